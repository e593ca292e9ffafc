"""Training tiles for learned plume segmentation, cut from synthetic EMIT scenes with known truth.

Each scene comes from :func:`hyperplex.geo.synth.emit_scene` (the tuning family: its current generator)
with settings drawn from the scene's own seed (:func:`scene_settings`): 0-4 plumes with peaks drawn
log-uniformly in 200-5000 ppm·m, sizes 1.5-5 px, look-alike surfaces, water, fill columns, saturated
spots and flares, and varied albedo. Scene ``i`` of a set with seed ``S`` uses seed ``S * 100003 + i``,
so the set is deterministic and two sets with different seeds share no scene.

Tile store (:func:`hyperplex.common.train.write_tiles`):

- ``image``: :func:`~hyperplex.geo.methane.plume_features.plume_features` of the 2122-2488 nm bands
  (49 EMIT bands), computed on the whole scene before cutting, float32;
- ``mask``: 1 (``plume``) where the true enhancement is >= ``threshold_ppmm`` (default 100 ppm·m),
  0 (``background``), 255 (ignored) at fill pixels;
- ``meta``: generator, seeds, threshold, window and every scene's settings and plumes.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hyperplex.common.errors import InvalidParameterError
from hyperplex.common.progress import progress
from hyperplex.geo.methane.plume_features import PLUME_WINDOW_NM, plume_features, window_bands

__all__ = ["MASK_CLASSES", "MASK_IGNORE", "TileRecipe", "methane_tiles", "scene_settings", "scene_tile_arrays"]

#: Classes of the per-pixel mask.
MASK_CLASSES = ["background", "plume"]
#: Mask value of pixels left out of the loss (fill).
MASK_IGNORE = 255
_SEED_STRIDE = 100003


@dataclass(frozen=True)
class TileRecipe:
    """How a tile set is made.

    Attributes:
        scenes: Number of synthetic scenes.
        seed: Seed of the set (scene ``i`` uses ``seed * 100003 + i``).
        size: Scene side in pixels (square scenes).
        tile: Tile side in pixels.
        threshold_ppmm: True enhancement at or above which a pixel is ``plume``.
        strength: Range of plume peaks, ppm·m (drawn log-uniformly per scene).
        max_plumes: Most plumes per scene (0..max drawn uniformly: some scenes have none).
    """

    scenes: int = 40
    seed: int = 0
    size: int = 256
    tile: int = 64
    threshold_ppmm: float = 100.0
    strength: tuple[float, float] = (200.0, 5000.0)
    max_plumes: int = 4

    def __post_init__(self) -> None:
        if self.scenes < 1 or self.seed < 0 or self.max_plumes < 0:
            raise InvalidParameterError("`scenes` must be >= 1, `seed` and `max_plumes` >= 0.")
        if not 16 <= self.tile <= self.size:
            raise InvalidParameterError(f"`tile` must be in 16..size ({self.size}); got {self.tile}.")
        if not 0 < self.strength[0] <= self.strength[1] or self.threshold_ppmm <= 0:
            raise InvalidParameterError(
                f"`strength` must be (min, max) with 0 < min <= max and `threshold_ppmm` > 0; got "
                f"{self.strength}, {self.threshold_ppmm}."
            )


def scene_settings(recipe: TileRecipe, index: int) -> dict[str, Any]:
    """Keyword arguments of :func:`~hyperplex.geo.synth.emit_scene` for scene ``index`` of the set."""
    seed = recipe.seed * _SEED_STRIDE + index
    rng = np.random.default_rng(seed)
    lo, hi = np.log(recipe.strength)
    peak = float(np.exp(rng.uniform(lo, hi)))
    return {
        "lines": recipe.size,
        "samples": recipe.size,
        "plumes": int(rng.integers(0, recipe.max_plumes + 1)),
        "plume_strength": (peak, min(peak * 1.5, recipe.strength[1])),
        "plume_size": (1.5, 5.0),
        "seed": seed,
        "fill_columns": int(rng.integers(0, 4)),
        "saturated": int(rng.integers(0, 3)),
        "flares": int(rng.integers(0, 3)),
        "water": int(rng.integers(0, 2)),
        "lookalikes": int(rng.integers(0, 4)),
        "albedo_variation": float(rng.uniform(0.05, 0.25)),
    }


def scene_tile_arrays(scene: Any, recipe: TileRecipe) -> dict[str, np.ndarray]:
    """Features and masks of one :class:`~hyperplex.geo.synth.EmitScene`, cut into tiles.

    Returns:
        ``{"image": (N, C, t, t) float32, "mask": (N, t, t) uint8, "origin": (N, 2)}``.
    """
    from hyperplex.common.train import scene_tiles

    bands = window_bands(scene.wavelengths)
    cube = np.moveaxis(scene.radiance[:, :, bands], -1, 0)
    features = plume_features(cube)
    mask = (scene.truth >= recipe.threshold_ppmm).astype(np.uint8)
    mask[scene.masks["fill"]] = MASK_IGNORE
    tiles = scene_tiles(features, recipe.tile)
    tiles["mask"] = scene_tiles(mask[None], recipe.tile)["image"][:, 0]
    return tiles


def methane_tiles(out: str | os.PathLike[str], recipe: TileRecipe | None = None) -> Path:
    """Generate the scenes of ``recipe``, cut them into tiles and write a tile store at ``out``.

    Returns:
        The store path (written atomically).

    Raises:
        InvalidParameterError: For a bad recipe.
    """
    from hyperplex.common.train import write_tiles
    from hyperplex.geo.synth import emit_scene

    recipe = recipe or TileRecipe()
    images, masks, described = [], [], []
    channels = None
    for index in progress(range(recipe.scenes), desc="methane tiles", unit="scene"):
        settings = scene_settings(recipe, index)
        scene = emit_scene(**settings)
        tiles = scene_tile_arrays(scene, recipe)
        images.append(tiles["image"])
        masks.append(tiles["mask"])
        channels = scene.channels[window_bands(scene.wavelengths)]
        plumes = [{k: p[k] for k in ("id", "peak_ppmm", "pixels", "ime_kg")} for p in scene.plumes]
        described.append({"settings": settings, "plumes": plumes, "tiles": len(tiles["image"])})
    meta = {
        "generator": "hyperplex.geo.methane.plume_tiles", "recipe": asdict(recipe), "window_nm": PLUME_WINDOW_NM,
        "features": "plume_features: column-centred, band-standardised log radiance", "scenes": described,
    }  # fmt: skip
    return write_tiles(out, np.concatenate(images), channels, mask=np.concatenate(masks), mask_classes=MASK_CLASSES,
                       mask_ignore=MASK_IGNORE, meta=meta)  # fmt: skip
