"""H&E rendering of the same tissue by Beer-Lambert absorption of hematoxylin and eosin."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from hyperplex.bio.synth.fields import smooth_field
from hyperplex.bio.synth.layout import Layout
from hyperplex.bio.synth.panel import CELL_TYPES

__all__ = ["render_he"]

#: Optical density per unit stain, RGB (Ruifrok & Johnston stain vectors, as in skimage's rgb_from_hed).
HEMATOXYLIN = np.array([0.65, 0.70, 0.29])
EOSIN = np.array([0.07, 0.99, 0.11])


def stain_densities(layout: Layout, proliferation: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Hematoxylin and eosin amounts ``(2, H, W)``: nuclei by type (darker when proliferating), cytoplasm, matrix.

    Args:
        layout: Geometry.
        proliferation: ``(K,)`` relative proliferation (e.g. Ki67 level) in [0, ~2]; darkens nuclei.
        rng: Random generator (chromatin and matrix textures).

    Returns:
        float32 stain amounts.
    """
    kinds = list(CELL_TYPES)
    type_idx = np.array([kinds.index(t) for t in layout.types])
    hema_type = np.array([CELL_TYPES[t]["hema"] for t in kinds])[type_idx]
    eosin_type = np.array([CELL_TYPES[t]["eosin"] for t in kinds])[type_idx]
    hema_cell = np.concatenate([[0.0], hema_type * (1 + 0.3 * np.clip(proliferation, 0, 2))])
    eosin_cell = np.concatenate([[0.0], eosin_type * rng.lognormal(0, 0.1, layout.count)])
    chromatin = np.clip(1 + 0.4 * smooth_field(rng, layout.cells.shape, 1.0), 0.3, None)
    nucleus = layout.nuclei > 0
    hema = np.where(nucleus, hema_cell[layout.nuclei] * chromatin, 0.06 * (layout.cells > 0))
    matrix = layout.tissue & (layout.cells == 0)
    eosin = np.where(nucleus, 0.1, eosin_cell[layout.cells]) + matrix * 0.45 * (0.3 + layout.fibres)
    return np.stack([hema, eosin]).astype(np.float32)


def render_he(layout: Layout, proliferation: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """RGB ``(3, H, W)`` uint8 bright-field image of the tissue (white where there is no tissue).

    Args:
        layout: Geometry.
        proliferation: ``(K,)`` relative proliferation per cell.
        rng: Random generator.

    Returns:
        The H&E image.
    """
    stains = ndimage.gaussian_filter(stain_densities(layout, proliferation, rng), (0, 0.8, 0.8))
    od = 1.3 * (stains[0, None] * HEMATOXYLIN[:, None, None] + stains[1, None] * EOSIN[:, None, None])
    rgb = 245.0 * np.exp(-od) + rng.normal(0, 2.5, od.shape)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
