"""Training tiles for learned plume segmentation, cut from synthetic EMIT scenes with known truth.

Each scene comes from :func:`hyperplex.geo.synth.emit_scene` with the physics of the *tuning* scene
family (:data:`hyperplex.geo.synth.settings.FAMILIES`, :data:`TRAINING_FAMILY`), so the evaluation family
stays unseen by the models, and with scene contents drawn from the scene's own seed
(:func:`scene_settings`): up to ``max_plumes`` plumes with peaks drawn log-uniformly in 200-5000 ppm·m,
cross-wind sizes 1.5-7 px (less in scenes under 50 px), look-alike surfaces, water, fill columns, saturated
spots and flares, and varied albedo. Scene ``i`` of a set with seed ``S`` uses seed ``S * 100003 + i``,
so the set is deterministic and two sets with different seeds share no scene.

Tile store (:func:`hyperplex.common.train.write_tiles`):

- ``image``: :func:`~hyperplex.geo.methane.plume_features.plume_features` of the 2122-2488 nm bands
  (49 EMIT bands and a matched-filter channel), computed on the whole scene before cutting, float32;
- ``mask``: 1 (``plume``) where the true enhancement is >= ``threshold_ppmm`` (default 100 ppm·m),
  0 (``background``), 255 (ignored) at fill pixels; of the tiles without plume pixels only every
  ``empty_every``-th of each scene is kept (positives are rare: ~1 % of pixels);
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
from hyperplex.geo.methane.plume_features import PLUME_WINDOW_NM, feature_channels, plume_features, window_bands

__all__ = [
    "MASK_CLASSES",
    "MASK_IGNORE",
    "TRAINING_FAMILY",
    "TileRecipe",
    "methane_tiles",
    "scene_settings",
    "scene_tile_arrays",
]

#: Classes of the per-pixel mask.
MASK_CLASSES = ["background", "plume"]
#: Mask value of pixels left out of the loss (fill).
MASK_IGNORE = 255
#: Scene family (:mod:`hyperplex.geo.synth.settings`) whose physics the training scenes use.
TRAINING_FAMILY = "tuning"
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
        empty_every: Keep every n-th tile without plume pixels of a scene (1: all).
    """

    scenes: int = 40
    seed: int = 0
    size: int = 256
    tile: int = 64
    threshold_ppmm: float = 100.0
    strength: tuple[float, float] = (200.0, 5000.0)
    max_plumes: int = 4
    empty_every: int = 4

    def __post_init__(self) -> None:
        if self.scenes < 1 or self.seed < 0 or self.max_plumes < 0 or self.empty_every < 1:
            raise InvalidParameterError("`scenes` and `empty_every` must be >= 1, `seed` and `max_plumes` >= 0.")
        if not 16 <= self.tile <= self.size:
            raise InvalidParameterError(f"`tile` must be in 16..size ({self.size}); got {self.tile}.")
        if not 0 < self.strength[0] <= self.strength[1] or self.threshold_ppmm <= 0:
            raise InvalidParameterError(
                f"`strength` must be (min, max) with 0 < min <= max and `threshold_ppmm` > 0; got "
                f"{self.strength}, {self.threshold_ppmm}."
            )


def scene_settings(recipe: TileRecipe, index: int) -> dict[str, Any]:
    """Keyword arguments of :func:`~hyperplex.geo.synth.emit_scene` for scene ``index`` of the set.

    ``settings`` is the :data:`TRAINING_FAMILY`'s :class:`~hyperplex.geo.synth.settings.SceneSettings`.
    """
    from hyperplex.geo.synth.settings import FAMILIES

    seed = recipe.seed * _SEED_STRIDE + index
    rng = np.random.default_rng(seed)
    lo, hi = np.log(recipe.strength)
    peak = float(np.exp(rng.uniform(lo, hi)))
    return {
        "lines": recipe.size,
        "samples": recipe.size,
        "plumes": int(rng.integers(0, recipe.max_plumes + 1)),
        "plume_strength": (peak, min(peak * 1.5, recipe.strength[1])),
        "plume_size": (1.5, min(7.0, (recipe.size / 2 - 2) / 3 - 0.5)),  # fits small scenes
        "seed": seed,
        "fill_columns": int(rng.integers(0, 4)),
        "saturated": int(rng.integers(0, 3)),
        "flares": int(rng.integers(0, 3)),
        "water": int(rng.integers(0, 2)),
        "lookalikes": int(rng.integers(0, 4)),
        "albedo_variation": float(rng.uniform(0.05, 0.25)),
        "settings": FAMILIES[TRAINING_FAMILY],
    }


def scene_tile_arrays(scene: Any, recipe: TileRecipe) -> dict[str, np.ndarray]:
    """Features and masks of one :class:`~hyperplex.geo.synth.EmitScene`, cut into tiles.

    Returns:
        ``{"image": (N, C + 1, t, t) float32, "mask": (N, t, t) uint8, "origin": (N, 2)}``: every tile with
        plume pixels, and every ``recipe.empty_every``-th of the others, in scan order.
    """
    from hyperplex.common.train import scene_tiles

    bands = window_bands(scene.wavelengths)
    cube = np.moveaxis(scene.radiance[:, :, bands], -1, 0)
    features = plume_features(cube, scene.wavelengths[bands], scene.fwhm[bands])
    mask = (scene.truth >= recipe.threshold_ppmm).astype(np.uint8)
    mask[scene.masks["fill"]] = MASK_IGNORE
    tiles = scene_tiles(features, recipe.tile)
    tiles["mask"] = scene_tiles(mask[None], recipe.tile)["image"][:, 0]
    plume = (tiles["mask"] == 1).any(axis=(1, 2))
    empty_rank = np.cumsum(~plume) - 1
    keep = plume | (empty_rank % recipe.empty_every == 0)
    return {k: v[keep] for k, v in tiles.items()}


def _scene_part(recipe: TileRecipe, index: int) -> tuple[dict[str, np.ndarray], dict[str, Any], Any]:
    """Tiles, description and feature channels of scene ``index`` (runs in a worker process when asked)."""
    from hyperplex.geo.synth import emit_scene

    settings = scene_settings(recipe, index)
    scene = emit_scene(**settings)
    tiles = scene_tile_arrays(scene, recipe)
    plumes = [{k: p[k] for k in ("id", "peak_ppmm", "pixels", "ime_kg")} for p in scene.plumes]
    drawn = {k: v for k, v in settings.items() if k != "settings"}
    described = {"settings": {**drawn, "family": TRAINING_FAMILY}, "plumes": plumes, "tiles": len(tiles["image"])}
    return tiles, described, feature_channels(scene.wavelengths[window_bands(scene.wavelengths)])


def _scene_parts(recipe: TileRecipe, workers: int) -> list[tuple[dict[str, np.ndarray], dict[str, Any], Any]]:
    """Every scene's part, in scene order (the same whatever ``workers``)."""
    indices = range(recipe.scenes)
    if workers <= 1:
        return [_scene_part(recipe, i) for i in progress(indices, desc="methane tiles", unit="scene")]
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as pool:
        parts = pool.map(_scene_part, [recipe] * recipe.scenes, indices)
        return list(progress(parts, total=recipe.scenes, desc="methane tiles", unit="scene"))


def methane_tiles(out: str | os.PathLike[str], recipe: TileRecipe | None = None, *, workers: int = 1) -> Path:
    """Generate the scenes of ``recipe``, cut them into tiles and write a tile store at ``out``.

    Args:
        out: The store (``*.zarr``), replaced atomically.
        recipe: The tile set (default :class:`TileRecipe`).
        workers: Processes generating scenes in parallel (the store is the same for any count).

    Returns:
        The store path.

    Raises:
        InvalidParameterError: For a bad recipe.
    """
    from hyperplex.common.train import write_tiles

    recipe = recipe or TileRecipe()
    parts = _scene_parts(recipe, workers)
    meta = {
        "generator": "hyperplex.geo.methane.plume_tiles", "family": TRAINING_FAMILY, "recipe": asdict(recipe),
        "window_nm": PLUME_WINDOW_NM,
        "features": "plume_features: column-centred, band-standardised log radiance + matched-filter SNR",
        "scenes": [described for _, described, _ in parts],
    }  # fmt: skip
    image = np.concatenate([tiles["image"] for tiles, _, _ in parts])
    mask = np.concatenate([tiles["mask"] for tiles, _, _ in parts])
    return write_tiles(out, image, parts[0][2], mask=mask, mask_classes=MASK_CLASSES, mask_ignore=MASK_IGNORE,
                       meta=meta)  # fmt: skip
