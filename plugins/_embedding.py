"""Tiled feature maps and their PCA colour map. Qt-free and torch-free (the model comes in as a function).

Feature maps live on a coarser grid than the image (one vector per ``stride`` x ``stride`` patch).
:func:`tiled_feature_map` pads the image to a multiple of the stride, runs the function on
overlapping tiles and stitches the per-tile maps with tapered blending on the coarse grid, where the
tile layout is the image layout divided by the stride.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import numpy as np

from hyperplex.common.arrays import as_channel_first, materialize
from hyperplex.common.errors import InvalidParameterError
from hyperplex.common.progress import progress
from hyperplex.common.tiling import Stitcher, Tiler, Window

__all__ = ["feature_map_steps", "pca_rgb", "tiled_feature_map"]


def _padded(data: Any, stride: int) -> tuple[Any, int, int]:
    _, h, w = data.shape
    ph, pw = (-h) % stride, (-w) % stride
    return data, h + ph, w + pw


def _read_tile(data: Any, window: Window, height: int, width: int) -> np.ndarray:
    """Read a window that may run past the image edge (the excess is reflected)."""
    rows, cols = window.slices
    tile = materialize(data[:, rows.start : min(rows.stop, height), cols.start : min(cols.stop, width)])
    pad_h, pad_w = window.height - tile.shape[1], window.width - tile.shape[2]
    if pad_h or pad_w:
        tile = np.pad(tile, ((0, 0), (0, pad_h), (0, pad_w)), mode="reflect" if min(tile.shape[1:]) > 1 else "edge")
    return tile


def feature_map_steps(
    fn: Callable[[np.ndarray], np.ndarray],
    array: Any,
    *,
    stride: int,
    tile_size: int,
    overlap: int = 0,
    channel_axis: int = 0,
) -> Generator[tuple[int, int], None, np.ndarray]:
    """Run ``fn`` tile by tile, yielding ``(done, total)`` after each tile; return the stitched map.

    Args:
        fn: Maps a ``(C, tile, tile)`` float32 tile to ``(D, tile/stride, tile/stride)`` features.
        array: ``(C, H, W)`` image (numpy, dask, zarr, xarray).
        stride: Pixels per feature cell (the model's patch size).
        tile_size: Tile edge in pixels; a multiple of ``stride``.
        overlap: Overlap in pixels; a multiple of ``stride``, smaller than ``tile_size``.
        channel_axis: Channel axis of ``array``.

    Yields:
        ``(tiles_done, tiles_total)``.

    Returns:
        The float32 feature map ``(D, ceil(H/stride), ceil(W/stride))``.

    Raises:
        InvalidParameterError: If the tile or overlap is not a multiple of the stride.
    """
    if stride <= 0 or tile_size % stride or overlap % stride:
        raise InvalidParameterError(
            f"tile_size ({tile_size}) and overlap ({overlap}) must be multiples of the stride ({stride})."
        )
    data = as_channel_first(array, channel_axis)
    height, width = int(data.shape[1]), int(data.shape[2])
    _, hp, wp = _padded(data, stride)
    tiles = (min(tile_size, hp), min(tile_size, wp))
    pixel_tiler = Tiler((hp, wp), tiles, tuple(min(overlap, t - stride) for t in tiles))
    coarse = Tiler(
        (hp // stride, wp // stride),
        (pixel_tiler.tile[0] // stride, pixel_tiler.tile[1] // stride),
        tuple(o // stride for o in pixel_tiler.overlap),
    )
    stitcher: Stitcher | None = None
    for done, (window, cell) in enumerate(zip(pixel_tiler, coarse), start=1):
        features = np.asarray(fn(_read_tile(data, window, height, width).astype(np.float32)))
        stitcher = stitcher or Stitcher(coarse, features.shape[0])
        stitcher.add(cell, features)
        yield done, len(coarse)
    out = stitcher.result()
    return out[:, : -(-height // stride), : -(-width // stride)]


def tiled_feature_map(
    fn: Callable[[np.ndarray], np.ndarray],
    array: Any,
    *,
    stride: int,
    tile_size: int,
    overlap: int = 0,
    channel_axis: int = 0,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """Run ``fn`` tile by tile and stitch a ``(D, ceil(H/stride), ceil(W/stride))`` feature map.

    Args:
        fn: Maps a ``(C, tile, tile)`` float32 tile to ``(D, tile/stride, tile/stride)`` features.
        array: ``(C, H, W)`` image (numpy, dask, zarr, xarray).
        stride: Pixels per feature cell (the model's patch size).
        tile_size: Tile edge in pixels; a multiple of ``stride``.
        overlap: Overlap in pixels; a multiple of ``stride``, smaller than ``tile_size``.
        channel_axis: Channel axis of ``array``.
        should_stop: Polled between tiles; returning True stops the run.

    Returns:
        The stitched float32 feature map.

    Raises:
        InvalidParameterError: If the tile or overlap is not a multiple of the stride, or the run was stopped.
    """
    steps = feature_map_steps(fn, array, stride=stride, tile_size=tile_size, overlap=overlap, channel_axis=channel_axis)
    bar = progress(total=None, desc="features", unit="tile")
    try:
        while True:
            if should_stop is not None and should_stop():
                raise InvalidParameterError("Feature extraction was stopped before it finished.")
            _, total = next(steps)
            bar.total = total
            bar.update(1)
    except StopIteration as stop:
        return stop.value
    finally:
        bar.close()


def pca_rgb(features: np.ndarray, *, percentiles: tuple[float, float] = (1.0, 99.0)) -> tuple[np.ndarray, np.ndarray]:
    """Project a ``(D, h, w)`` feature map on its first three principal components, as RGB.

    Each component is scaled to ``[0, 1]`` between its ``percentiles``. Component signs are fixed so
    the largest-magnitude loading is positive (the colours do not flip between runs).

    Args:
        features: Feature map; non-finite cells become black.
        percentiles: Contrast stretch per component.

    Returns:
        ``(rgb (h, w, 3) float32, explained_variance_ratio (3,))``.

    Raises:
        InvalidParameterError: If the map is not 3-D or has no finite cell.
    """
    if features.ndim != 3:
        raise InvalidParameterError(f"`features` must be (D, h, w); got shape {features.shape}.")
    d, h, w = features.shape
    flat = features.reshape(d, -1).T.astype(np.float64)  # (N, D)
    valid = np.all(np.isfinite(flat), axis=1)
    if not valid.any():
        raise InvalidParameterError("The feature map has no finite cell to run PCA on.")
    centred = flat[valid] - flat[valid].mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    k = min(3, vt.shape[0])
    comps = vt[:k] * np.sign(vt[:k][np.arange(k), np.argmax(np.abs(vt[:k]), axis=1)])[:, None]
    scores = np.zeros((flat.shape[0], 3))
    scores[valid, :k] = centred @ comps.T
    lo, hi = np.percentile(scores[valid], percentiles, axis=0)
    rgb = np.clip((scores - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0, 1.0)
    rgb[~valid] = 0.0
    variance = s**2
    ratio = np.zeros(3)
    ratio[:k] = variance[:k] / max(variance.sum(), 1e-300)
    return rgb.reshape(h, w, 3).astype(np.float32), ratio
