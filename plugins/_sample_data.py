"""npe2 sample data: a synthetic EMIT scene with methane plumes, and a synthetic multiplex tissue.

Both are generated with fixed seeds by ``hyperplex.geo.synth`` and ``hyperplex.bio`` (no downloads),
so what the widgets find on them can be checked against the known truth.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hyperplex.common.image import MultiscaleImage
from hyperplex.plugins._layers import LayerDataTuple, image_layer_data

__all__ = ["emit_sample", "emit_stack", "he_layer", "tissue_sample", "tissue_stack"]


def emit_stack(lines: int = 128, samples: int = 128, seed: int = 0) -> tuple[MultiscaleImage, Any]:
    """The synthetic EMIT radiance cube as a stack ``(285, lines, samples)``, plus the scene (truth).

    Args:
        lines: Downtrack size.
        samples: Crosstrack size.
        seed: Random seed.

    Returns:
        ``(stack, scene)``.
    """
    from hyperplex.geo.nodata import FILL_VALUE
    from hyperplex.geo.synth import emit_scene

    scene = emit_scene(lines=lines, samples=samples, seed=seed)
    cube = np.ascontiguousarray(np.moveaxis(scene.radiance, -1, 0))  # (bands, lines, samples)
    side = float(np.sqrt(scene.pixel_area_m2))
    meta = {"domain": "geo", "fill_value": FILL_VALUE}
    stack = MultiscaleImage([cube], scene.channels, (side, side), metadata=meta, units="meter",
                            name="EMIT radiance (synthetic)")  # fmt: skip
    return stack, scene


def _truth_layers(scene: Any, scale: tuple[float, float]) -> list[LayerDataTuple]:
    spatial = {"scale": scale, "units": ("meter", "meter"), "visible": False}
    enhancement = (scene.truth, {"name": "CH4 truth (ppm·m)", "colormap": "magma", **spatial}, "image")
    labels = (scene.plume_labels.astype(np.int32), {"name": "plume truth", **spatial}, "labels")
    return [enhancement, labels]


def emit_sample() -> list[LayerDataTuple]:
    """Layers for the synthetic EMIT scene: the radiance cube (band slider) and the hidden truth."""
    stack, scene = emit_stack()
    return image_layer_data(stack) + _truth_layers(scene, stack.pixel_size)


def tissue_stack(size: int = 256, seed: int = 0, markers: int = 8) -> tuple[MultiscaleImage, Any]:
    """The synthetic multiplex tissue as a two-level stack, plus the tissue (H&E, cell masks, truth).

    Args:
        size: Image height and width in pixels.
        seed: Random seed.
        markers: Number of marker channels.

    Returns:
        ``(stack, tissue)``.
    """
    from hyperplex.bio.synth import tissue

    sample = tissue(size=size, markers=markers, seed=seed)
    image = sample.to_image(levels=2)
    image.name, image.metadata["domain"] = "tissue (synthetic)", "bio"
    return image, sample


def he_layer(sample: Any, *, visible: bool = False) -> LayerDataTuple:
    """The tissue's H&E rendering as an RGB layer (``(H, W, 3)`` uint8) on the same grid."""
    spatial = {"scale": (sample.pixel_size_um,) * 2, "units": ("micrometer", "micrometer")}
    kwargs = {"name": "H&E (synthetic)", "rgb": True, "visible": visible, **spatial}
    return (np.moveaxis(sample.he, 0, -1), kwargs, "image")


def tissue_sample() -> list[LayerDataTuple]:
    """Layers for the synthetic tissue: one additive layer per marker, the H&E and the cell masks (hidden)."""
    stack, sample = tissue_stack()
    spatial = {"scale": (sample.pixel_size_um,) * 2, "units": ("micrometer", "micrometer")}
    cells = (sample.cells, {"name": "cells (truth)", "visible": False, **spatial}, "labels")
    return [he_layer(sample), *image_layer_data(stack), cells]
