"""Shared TIFF plumbing: open a file with clear errors, and expose a series' levels as lazy dask arrays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dask.array as da

from hyperplex.common.errors import DataNotFoundError, FileFormatError

__all__ = ["open_tiff", "series_levels"]


def open_tiff(path: Path) -> Any:
    """Open ``path`` with tifffile (headers only).

    Raises:
        DataNotFoundError: If the file does not exist.
        FileFormatError: If it is not a TIFF file.
    """
    import tifffile

    if not path.is_file():
        raise DataNotFoundError(f"{path}: no such file.")
    try:
        return tifffile.TiffFile(path)
    except (tifffile.TiffFileError, ValueError, OSError) as err:
        raise FileFormatError(f"{path}: not a readable TIFF file ({err}).") from err


def series_levels(tif: Any, series: int, path: Path) -> tuple[list[da.Array], str]:
    """Every pyramid level of one series as dask arrays chunked like the TIFF tiles (no pixel read).

    Args:
        tif: The open ``tifffile.TiffFile``.
        series: Series index.
        path: File path, for error messages.

    Returns:
        The levels (finest first) in the series' own axis order, and that order (``series.axes``).

    Raises:
        FileFormatError: If the series does not exist.
    """
    import zarr

    if not 0 <= series < len(tif.series):
        raise FileFormatError(f"{path}: has {len(tif.series)} image series; series={series} does not exist.")
    ser = tif.series[series]
    node = zarr.open(ser.aszarr(), mode="r")
    if hasattr(node, "shape"):  # a single level comes back as an array
        return [da.from_zarr(node)], ser.axes
    keys = sorted(node.array_keys(), key=int)
    return [da.from_zarr(node[k]) for k in keys], ser.axes
