"""The measured cells of a slide, spilled to disk block by block: memory does not grow with the cell count.

Each block's cells are appended as fixed-size binary records (``id`` int64, ``centroid`` 2 x float64,
``area`` int64, ``means`` M x float32: 32 + 4 M bytes a cell) to one raw file in a temporary folder.
In memory stay only the count and each marker's smallest and largest mean (what the Otsu histograms
need); the rows are read back in chunks. The folder is removed by :meth:`CellSpill.close` (or when the
object is garbage collected).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from hyperplex.bio.cells import CellBlock

__all__ = ["CellSpill", "cell_record"]

#: Rows read back at a time.
READ_ROWS = 100_000


def cell_record(markers: int) -> np.dtype:
    """The on-disk record of one cell with ``markers`` marker means."""
    return np.dtype([("id", "<i8"), ("centroid", "<f8", (2,)), ("area", "<i8"), ("means", "<f4", (markers,))])


class CellSpill:
    """Cells appended block by block to a raw file; read back in chunks.

    Args:
        markers: Number of markers (columns of each block's ``means``).
        directory: Where the temporary folder goes (None: the system's temporary directory). A folder on
            the output's disk (e.g. the run's work folder) keeps the spill off a RAM-backed ``/tmp``.

    Attributes:
        count: Cells appended so far.
        low, high: ``(M,)`` float32 smallest and largest mean of each marker (NaN-propagating; +inf/-inf
            while empty).
    """

    def __init__(self, markers: int, directory: str | os.PathLike[str] | None = None) -> None:
        self.dtype = cell_record(markers)
        self._folder = tempfile.TemporaryDirectory(prefix="hyperplex-cells-", dir=directory)
        self.path = Path(self._folder.name) / "cells.bin"
        self.path.touch()
        self.count = 0
        self.low = np.full(markers, np.inf, np.float32)
        self.high = np.full(markers, -np.inf, np.float32)

    def __len__(self) -> int:
        return self.count

    def append(self, block: CellBlock) -> None:
        """Write one block's cells at the end of the file and widen the value ranges."""
        rows = np.empty(len(block.ids), self.dtype)
        rows["id"], rows["centroid"], rows["area"] = block.ids, block.centroid, block.area
        rows["means"] = block.means
        if len(rows):
            self.low = np.minimum(self.low, rows["means"].min(axis=0))
            self.high = np.maximum(self.high, rows["means"].max(axis=0))
        with open(self.path, "ab") as f:
            rows.tofile(f)
        self.count += len(rows)

    def chunks(self, rows: int | None = None) -> Iterator[np.ndarray]:
        """The records in file order, ``rows`` (default :data:`READ_ROWS`) at a time; one empty chunk when empty."""
        rows = rows or READ_ROWS
        with open(self.path, "rb") as f:
            part = np.fromfile(f, self.dtype, count=rows)
            yield part
            while len(part) == rows:
                part = np.fromfile(f, self.dtype, count=rows)
                if len(part):
                    yield part

    def __iter__(self) -> Iterator[CellBlock]:
        """The cells as :class:`CellBlock` chunks (``area`` float64, as measured)."""
        for part in self.chunks():
            yield CellBlock(part["id"], part["centroid"], part["area"].astype(np.float64), part["means"])

    def close(self) -> None:
        """Remove the temporary folder (idempotent)."""
        self._folder.cleanup()

    def __enter__(self) -> CellSpill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
