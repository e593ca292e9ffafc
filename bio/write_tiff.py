"""OME-TIFF writer: tiled, pyramidal (SubIFDs), compressed, with channel names, colours and pixel size."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np

from hyperplex.bio._source import iter_strips, prepare
from hyperplex.bio.ome_tiff import ome_channel_metadata
from hyperplex.common.atomic import atomic_path
from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import InvalidParameterError
from hyperplex.common.progress import progress

__all__ = ["write_ome_tiff"]


def write_ome_tiff(
    path: str | os.PathLike[str],
    data: Any,
    channels: Any = None,
    pixel_size_um: float | tuple[float, float] | None = None,
    *,
    levels: int | None = None,
    tile: int = 512,
    compression: str | None = "zlib",
    rgb: bool = False,
    downsample: str = "mean",
) -> Path:
    """Write a tiled, pyramidal OME-TIFF (reduced levels in SubIFDs, as Bio-Formats and QuPath expect).

    Lazy input is written tile row by tile row, so images larger than memory work. The file appears
    atomically.

    Args:
        path: Destination (``.ome.tif``).
        data: ``(C, Y, X)`` array (numpy, dask, zarr, xarray) or a :class:`MultiscaleImage`.
        channels: Names or a ChannelSet (default: from ``data`` if it has them, else ``c0..``).
        pixel_size_um: Pixel size in µm, one number or ``(y, x)``.
        levels: Number of pyramid levels including full resolution; None: a MultiscaleImage's own
            levels, else halve until the smaller side is at most 256.
        tile: Tile edge in pixels (a multiple of 16).
        compression: tifffile codec name (``"zlib"``, ``"zstd"``, ``"lzw"``, ``"jpeg2000"``) or None.
        rgb: Store 3 uint8 channels as interleaved RGB (photometric RGB), the usual layout for H&E.
        downsample: ``"mean"`` for intensities, ``"nearest"`` for label images.

    Returns:
        The path written.

    Raises:
        InvalidParameterError: If the tile size or an RGB request does not fit the data.
        ChannelMismatchError: If ``channels`` does not match the channel count.
    """
    import tifffile

    lvls, chans, size = prepare(data, channels, pixel_size_um, levels, downsample)
    _check(lvls[0], tile, rgb)
    total = sum(_tile_count(lvl, tile, rgb) for lvl in lvls)
    options = {"tile": (tile, tile), "compression": compression, "photometric": "rgb" if rgb else "minisblack"}
    bigtiff = sum(lvl.nbytes for lvl in lvls) > 2**31
    with atomic_path(path) as tmp, progress(total=total, desc=f"write {Path(path).name}", unit="tile") as bar:
        with tifffile.TiffWriter(tmp, bigtiff=bigtiff, ome=True) as writer:
            for index, lvl in enumerate(lvls):
                extra = {"subifds": len(lvls) - 1, "metadata": _metadata(chans, size, rgb)} if index == 0 else {}
                extra |= {"subfiletype": 1} if index else {}
                shape = (*lvl.shape[1:], lvl.shape[0]) if rgb else lvl.shape
                writer.write(_tiles(lvl, tile, rgb, bar), shape=shape, dtype=lvl.dtype, **options, **extra)
    return Path(path)


def _check(level: da.Array, tile: int, rgb: bool) -> None:
    if tile <= 0 or tile % 16:
        raise InvalidParameterError(f"`tile` must be a positive multiple of 16; got {tile}.")
    if rgb and (level.shape[0] not in (3, 4) or level.dtype != np.uint8):
        raise InvalidParameterError(f"`rgb=True` needs 3 or 4 uint8 channels; got {level.shape[0]} x {level.dtype}.")


def _metadata(channels: ChannelSet, size: tuple[float, float] | None, rgb: bool) -> dict[str, Any]:
    meta: dict[str, Any] = {"axes": "YXS" if rgb else "CYX"}
    if not rgb:
        meta |= ome_channel_metadata(channels)
    if size is not None:
        meta |= {"PhysicalSizeY": size[0], "PhysicalSizeX": size[1]}
        meta |= {"PhysicalSizeYUnit": "µm", "PhysicalSizeXUnit": "µm"}
    return meta


def _tile_count(level: da.Array, tile: int, rgb: bool) -> int:
    pages = 1 if rgb else level.shape[0]
    return pages * -(-level.shape[1] // tile) * -(-level.shape[2] // tile)


def _tiles(level: da.Array, tile: int, rgb: bool, bar: Any) -> Iterator[np.ndarray]:
    """Yield full (edge-padded) tiles in TIFF order: page by page, row by row, left to right."""
    pages = [None] if rgb else range(level.shape[0])
    for page in pages:
        strips = _rgb_strips(level, tile) if rgb else iter_strips(level, page, tile)
        for strip in strips:
            padded = _pad(strip, tile, level.shape[2])
            for left in range(0, padded.shape[1], tile):
                yield padded[:, left : left + tile]
                bar.update(1)


def _rgb_strips(level: da.Array, rows: int) -> Iterator[np.ndarray]:
    for top in range(0, level.shape[1], rows):
        yield np.moveaxis(np.asarray(level[:, top : top + rows].compute()), 0, -1)


def _pad(strip: np.ndarray, tile: int, width: int) -> np.ndarray:
    pad_rows, pad_cols = tile - strip.shape[0], -width % tile
    if pad_rows == 0 and pad_cols == 0:
        return strip
    widths = [(0, pad_rows), (0, pad_cols)] + [(0, 0)] * (strip.ndim - 2)
    return np.pad(strip, widths)
