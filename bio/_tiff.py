"""Shared TIFF plumbing: open a file with clear errors, and expose a series' levels as lazy dask arrays."""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask.array as da

from hyperplex.common.errors import DataNotFoundError, FileFormatError, HyperplexError
from hyperplex.common.filechecks import check_tiff_extent
from hyperplex.common.lazyread import read_failures

__all__ = ["TiffLevel", "damaged", "open_tiff", "series_levels"]


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
        tif = tifffile.TiffFile(path)
    except (tifffile.TiffFileError, ValueError, OSError) as err:
        raise FileFormatError(f"{path}: not a readable TIFF file ({err}).") from err
    try:
        with damaged(path):
            check_tiff_extent(tif, path)
            _check_ome_xml(tif, path)
    except BaseException:
        tif.close()
        raise
    return tif


@contextlib.contextmanager
def damaged(path: Path) -> Iterator[None]:
    """Report what tifffile or zarr raise on a damaged file (bad IFDs, keyframes, tag values) as a FileFormatError."""
    import tifffile

    try:
        yield
    except (tifffile.TiffFileError, RuntimeError, TypeError, ValueError, KeyError, IndexError, ZeroDivisionError,
            struct.error, OverflowError) as err:  # fmt: skip
        if isinstance(err, HyperplexError):
            raise
        raise FileFormatError(f"{path}: damaged file structure ({type(err).__name__}: {err}).") from err


def _check_ome_xml(tif: Any, path: Path) -> None:
    """Refuse a TIFF whose first ImageDescription starts OME-XML but does not end it (a cut-off header)."""
    description = tif.pages[0].description if len(tif.pages) else ""
    head = description.lstrip()[:512]
    if ("<OME" in head or head.startswith("<?xml")) and "OME" in head and not description.rstrip().endswith("OME>"):
        raise FileFormatError(
            f"{path}: its OME-XML header is cut off ({len(description)} characters, no closing </OME>); "
            "the channel metadata cannot be trusted. Re-export the file."
        )


class TiffLevel:
    """Array-like view of one pyramid level of a TIFF series that can be pickled (for dask.distributed).

    Slicing goes through tifffile's zarr store, opened on first use; a pickled copy carries only the
    path, series and level and reopens the file in the receiving process.
    """

    def __init__(self, path: Path, series: int, level: int, node: Any | None = None):
        self.path, self.series, self.level = Path(path), series, level
        self._node = node
        meta = self._array()
        self.shape, self.dtype, self.chunks = tuple(meta.shape), meta.dtype, tuple(meta.chunks)
        self.ndim = len(self.shape)

    def _array(self) -> Any:
        if self._node is None:
            import tifffile
            import zarr

            tif = tifffile.TiffFile(self.path)
            self._node = zarr.open(tif.series[self.series].aszarr(level=self.level), mode="r")
        return self._node

    def __getitem__(self, key: Any) -> Any:
        with read_failures(self.path, f"series {self.series} level {self.level}", key):  # a corrupt tile
            return self._array()[key]

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_node"} | {"_node": None}


def series_levels(tif: Any, series: int, path: Path) -> tuple[list[da.Array], str]:
    """Every pyramid level of one series as dask arrays chunked like the TIFF tiles (no pixel read).

    Args:
        tif: The open ``tifffile.TiffFile``.
        series: Series index.
        path: File path, for error messages.

    Returns:
        The levels (finest first) in the series' own axis order, and that order (``series.axes``).
        The arrays pickle (they reopen the file by path), so they work with dask.distributed.

    Raises:
        FileFormatError: If the series does not exist.
    """
    import numpy as np
    import zarr

    if not 0 <= series < len(tif.series):
        raise FileFormatError(f"{path}: has {len(tif.series)} image series; series={series} does not exist.")
    ser = tif.series[series]
    node = zarr.open(ser.aszarr(), mode="r")
    nodes = [node] if hasattr(node, "shape") else [node[k] for k in sorted(node.array_keys(), key=int)]
    token = f"{path.resolve()}-{path.stat().st_mtime_ns}-{series}"
    levels = []
    for index, arr in enumerate(nodes):
        view = TiffLevel(path, series, index, arr)
        meta = np.empty((0,) * view.ndim, view.dtype)
        name = f"tiff-{index}-{token}"
        levels.append(da.from_array(view, chunks=view.chunks, name=name, lock=False, meta=meta, asarray=False))
    return levels, ser.axes
