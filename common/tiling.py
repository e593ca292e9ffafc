"""Overlapping tiles over ``(C, H, W)`` images too big for memory, and a blending stitcher.

``Tiler`` lays out windows that cover the image; ``iter_tiles`` reads them from numpy, memmap, zarr,
dask or xarray data one at a time; ``Stitcher`` accumulates per-tile outputs with tapered weights
so seams vanish. Weights are strictly positive and normalised per pixel, so tiling and stitching
the identity gives back the input exactly, for any tile size and overlap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from hyperplex.common.arrays import as_channel_first, materialize
from hyperplex.common.errors import InvalidParameterError
from hyperplex.common.progress import progress

__all__ = ["Stitcher", "Tiler", "Window", "apply_tiled", "iter_tiles", "taper_weights"]


@dataclass(frozen=True)
class Window:
    """A rectangle of rows and columns (like ``rasterio.windows.Window``, in row/col order)."""

    row: int
    col: int
    height: int
    width: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(row_slice, col_slice)`` for indexing the last two axes."""
        return slice(self.row, self.row + self.height), slice(self.col, self.col + self.width)


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) for v in pair):
        raise InvalidParameterError(f"`{name}` must be an int or a (rows, cols) pair of ints; got {value!r}.")
    return int(pair[0]), int(pair[1])


def _starts(size: int, tile: int, overlap: int) -> list[int]:
    """Tile origins along one axis: stride ``tile - overlap``, the last one flush with the edge."""
    if size <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, size - tile, step))
    starts.append(size - tile)
    return starts


class Tiler:
    """Windows of ``tile_size`` overlapping by ``overlap`` that cover an ``(H, W)`` image.

    Every window has the full tile size unless the image is smaller than a tile; the last row and
    column of tiles are shifted to end flush with the image edge (so overlaps there may be larger).

    Args:
        shape: Image size ``(H, W)`` (or any shape whose last two entries are H, W).
        tile_size: Tile height and width (int for square tiles).
        overlap: Rows/columns shared by neighbouring tiles; must be smaller than the tile.

    Raises:
        InvalidParameterError: For non-positive tiles or overlaps not smaller than the tile.
    """

    def __init__(self, shape: tuple[int, ...], tile_size: int | tuple[int, int], overlap: int | tuple[int, int] = 0):
        self.height, self.width = (int(s) for s in shape[-2:])
        self.tile = _pair(tile_size, "tile_size")
        self.overlap = _pair(overlap, "overlap")
        for t, o in zip(self.tile, self.overlap):
            if t <= 0 or o < 0 or o >= t:
                raise InvalidParameterError(
                    f"Need tile_size > overlap >= 0; got tile_size={self.tile}, overlap={self.overlap}."
                )
        rows = _starts(self.height, self.tile[0], self.overlap[0])
        cols = _starts(self.width, self.tile[1], self.overlap[1])
        th, tw = min(self.tile[0], self.height), min(self.tile[1], self.width)
        self.windows = [Window(r, c, th, tw) for r in rows for c in cols]

    def __iter__(self) -> Iterator[Window]:
        return iter(self.windows)

    def __len__(self) -> int:
        return len(self.windows)


def iter_tiles(
    array: Any, tiler: Tiler, *, channel_axis: int = 0, dtype: Any | None = None
) -> Iterator[tuple[Window, np.ndarray]]:
    """Read ``array`` tile by tile.

    Args:
        array: 3-D numpy, memmap, zarr, dask or xarray data.
        tiler: The tile layout (its shape must match the array's rows and columns).
        channel_axis: Axis of ``array`` holding channels.
        dtype: Convert each tile to this dtype.

    Yields:
        ``(window, tile)`` with ``tile`` a numpy ``(C, h, w)`` array.
    """
    data = as_channel_first(array, channel_axis)
    if tuple(data.shape[-2:]) != (tiler.height, tiler.width):
        raise InvalidParameterError(
            f"Tiler was built for {(tiler.height, tiler.width)} but the array is {tuple(data.shape[-2:])}."
        )
    for window in tiler:
        rows, cols = window.slices
        yield window, materialize(data[:, rows, cols], dtype)


def _ramp(length: int, overlap: int, taper_start: bool, taper_end: bool) -> np.ndarray:
    w = np.ones(length, dtype=np.float64)
    n = min(overlap, length // 2)
    if n > 0:
        ramp = (np.arange(n, dtype=np.float64) + 0.5) / n  # strictly positive
        if taper_start:
            w[:n] = ramp
        if taper_end:
            w[length - n :] = ramp[::-1]
    return w


def taper_weights(window: Window, tiler: Tiler) -> np.ndarray:
    """Blending weights ``(h, w)`` for a tile: linear ramps over overlaps, flat at image borders."""
    wr = _ramp(window.height, tiler.overlap[0], window.row > 0, window.row + window.height < tiler.height)
    wc = _ramp(window.width, tiler.overlap[1], window.col > 0, window.col + window.width < tiler.width)
    return np.outer(wr, wc)


class Stitcher:
    """Blend per-tile outputs back into one ``(C_out, H, W)`` image.

    Sums are kept in float64 and divided by the per-pixel weight sum at the end, so overlapping
    predictions are averaged with tapered weights and an identity map is reproduced exactly.

    Args:
        tiler: The layout the tiles came from.
        channels: Number of output channels (may differ from the input's).
        dtype: dtype of the result.
        out: Optional preallocated float64 accumulator (e.g. a ``np.memmap``) for large outputs.
    """

    def __init__(self, tiler: Tiler, channels: int, dtype: Any = np.float32, out: np.ndarray | None = None):
        self.tiler = tiler
        self.dtype = np.dtype(dtype)
        shape = (channels, tiler.height, tiler.width)
        if out is not None and tuple(out.shape) != shape:
            raise InvalidParameterError(f"`out` must have shape {shape}; got {tuple(out.shape)}.")
        self.sum = out if out is not None else np.zeros(shape, dtype=np.float64)
        self.weight = np.zeros(shape[1:], dtype=np.float64)

    def add(self, window: Window, block: np.ndarray) -> None:
        """Accumulate a tile output ``block`` of shape ``(C_out, h, w)`` at ``window``."""
        block = np.asarray(block)
        expected = (self.sum.shape[0], window.height, window.width)
        if block.shape != expected:
            raise InvalidParameterError(f"Tile output must be {expected}; got {block.shape}.")
        w = taper_weights(window, self.tiler)
        rows, cols = window.slices
        self.sum[:, rows, cols] += block * w
        self.weight[rows, cols] += w

    def result(self) -> np.ndarray:
        """The blended image; pixels no tile covered are NaN."""
        with np.errstate(invalid="ignore", divide="ignore"):
            out = self.sum / self.weight
        return out.astype(self.dtype, copy=False)


def apply_tiled(
    fn: Callable[[np.ndarray, Window], np.ndarray],
    array: Any,
    tile_size: int | tuple[int, int],
    overlap: int | tuple[int, int] = 0,
    *,
    out_channels: int | None = None,
    channel_axis: int = 0,
    dtype: Any = np.float32,
    desc: str = "tiles",
) -> np.ndarray:
    """Run ``fn`` over overlapping tiles of ``array`` and stitch the results.

    Args:
        fn: Maps a ``(C, h, w)`` tile (and its window) to a ``(C_out, h, w)`` output.
        array: Input data of any supported type.
        tile_size: Tile size.
        overlap: Overlap between tiles.
        out_channels: C_out; defaults to the input channel count.
        channel_axis: Channel axis of ``array``.
        dtype: dtype of the result.
        desc: Progress bar label.

    Returns:
        The stitched ``(C_out, H, W)`` result.
    """
    data = as_channel_first(array, channel_axis)
    tiler = Tiler(data.shape, tile_size, overlap)
    stitcher = Stitcher(tiler, out_channels or data.shape[0], dtype)
    for window, tile in progress(iter_tiles(data, tiler), total=len(tiler), desc=desc, unit="tile"):
        stitcher.add(window, fn(tile, window))
    return stitcher.result()
