"""Paired H&E -> multiplex training data from the synthetic tissue, and the marker-intensity scale MIPHEI uses.

A MIPHEI model predicts each marker on a tanh scale: the training target is the camera counts above
the channel's background divided by a per-marker ``scale`` (a high percentile of the training slides),
clipped to [0, 1] and mapped linearly onto [-0.9, 0.9] (MIPHEI-ViT's convention). :func:`intensity`
maps a prediction back to [0, 1] (1 = the ``scale`` counts).

:func:`write_pair_store` cuts synthetic slides (``hyperplex synth microscopy``'s tissue, with its
matching H&E) into the tile store that ``hyperplex train --task regress`` reads.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hyperplex.common.errors import InvalidParameterError

__all__ = ["SCALE_PERCENTILE", "TARGET_RANGE", "intensity", "marker_scale", "mif_target", "write_pair_store"]

#: Percentile of the background-subtracted counts that maps to intensity 1 (target 0.9).
SCALE_PERCENTILE = 99.5
#: The target's half range: intensity 0 -> -0.9, 1 -> +0.9 (MIPHEI-ViT scales its mIF targets this way).
TARGET_RANGE = 0.9


def marker_scale(images: Sequence[np.ndarray], backgrounds: Sequence[np.ndarray]) -> np.ndarray:
    """Per-marker counts above background at :data:`SCALE_PERCENTILE` over several ``(C, H, W)`` slides."""
    above = [
        (np.asarray(im, np.float32) - np.asarray(bg, np.float32)[:, None, None]) for im, bg in zip(images, backgrounds)
    ]
    flat = np.concatenate([a.reshape(a.shape[0], -1) for a in above], axis=1)
    return np.maximum(np.percentile(flat, SCALE_PERCENTILE, axis=1), 1.0).astype(np.float64)


def mif_target(image: np.ndarray, background: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Camera counts ``(C, H, W)`` -> the float32 training target in [-0.9, 0.9]."""
    counts = np.asarray(image, np.float32) - np.asarray(background, np.float32)[:, None, None]
    unit = np.clip(counts / np.asarray(scale, np.float32)[:, None, None], 0.0, 1.0)
    return (2 * TARGET_RANGE * unit - TARGET_RANGE).astype(np.float32)


def intensity(prediction: Any) -> Any:
    """A MIPHEI output (tanh scale) -> relative marker intensity in [0, 1] (inverse of :func:`mif_target`)."""
    return np.clip((prediction + TARGET_RANGE) / (2 * TARGET_RANGE), 0.0, 1.0)


def write_pair_store(
    path: str | os.PathLike[str],
    seeds: Sequence[int],
    *,
    size: int = 768,
    markers: int = 16,
    tile: int = 128,
    stride: int = 96,
) -> Path:
    """Write a tile store of synthetic H&E tiles (uint8 RGB) with their multiplex targets.

    Args:
        path: Destination ``.zarr`` (replaced atomically).
        seeds: One synthetic slide per seed (keep evaluation seeds out of this list).
        size: Slide edge in pixels (0.5 µm).
        markers: Marker panel size (the first ``markers`` of the synthetic catalogue, DAPI first).
        tile: Tile side.
        stride: Step between tiles.

    Returns:
        The store path; ``meta`` holds the seeds, the per-marker ``scale`` and the target formula.

    Raises:
        InvalidParameterError: Without seeds, or for a tile larger than the slide.
    """
    from hyperplex.bio.synth import tissue
    from hyperplex.common.progress import progress
    from hyperplex.common.train import scene_tiles, write_tiles

    if not seeds:
        raise InvalidParameterError("`seeds` must name at least one synthetic slide.")
    slides = [tissue(size=size, markers=markers, seed=int(s)) for s in progress(seeds, desc="synthetic slides")]
    scale = marker_scale([s.image for s in slides], [s.background for s in slides])
    images, targets = [], []
    for slide in slides:
        cut = scene_tiles(slide.he, tile, stride=stride, target=mif_target(slide.image, slide.background, scale))
        images.append(cut["image"])
        targets.append(cut["target"])
    meta = {
        "source": "hyperplex.bio.synth.tissue", "seeds": [int(s) for s in seeds], "size": size, "tile": tile,
        "stride": stride, "scale": scale.tolist(), "scale_percentile": SCALE_PERCENTILE,
        "target": "1.8 * clip((counts - background) / scale, 0, 1) - 0.9",
    }  # fmt: skip
    rgb = slides[0].he_image().channels
    return write_tiles(path, np.concatenate(images), rgb, target=np.concatenate(targets),
                       target_channels=slides[0].channels, meta=meta)  # fmt: skip
