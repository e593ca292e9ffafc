"""Declared sizes checked against the file before anything is allocated or read.

A header (ENVI, TIFF, a model's config) says how much data follows; a truncated file, or a header
that belongs to another file, must end in a :class:`~hyperplex.common.errors.FileFormatError` naming
the file, never in a gigantic allocation or a low-level error in the middle of a computation.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from hyperplex.common.errors import FileFormatError

__all__ = ["check_declared_size", "check_tiff_extent"]


def check_declared_size(path: str | os.PathLike[str], shape: tuple[int, ...], itemsize: int, offset: int = 0) -> None:
    """Compare the size a header declares (``shape`` of ``itemsize`` bytes after ``offset``) with the file.

    Raises:
        FileFormatError: For a non-positive dimension, or a file shorter than declared (truncated, or a
            header describing another file); a longer file only warns (trailing bytes are ignored).
    """
    path = Path(path)
    if any(int(n) <= 0 for n in shape) or offset < 0:
        raise FileFormatError(f"{path}: the header declares shape {tuple(shape)} (offset {offset}); "
                              "every dimension must be positive.")  # fmt: skip
    declared = offset + int(np.prod([int(n) for n in shape], dtype=object)) * int(itemsize)
    actual = path.stat().st_size
    if actual < declared:
        raise FileFormatError(
            f"{path}: the header declares {tuple(shape)} values ({declared} bytes) but the file has {actual} bytes; "
            "the file is truncated or the header belongs to another file."
        )
    if actual > declared:
        warnings.warn(f"{path}: {actual - declared} bytes after the declared data are ignored; check the header.",
                      UserWarning, stacklevel=3)  # fmt: skip


def check_tiff_extent(tif: object, path: str | os.PathLike[str]) -> None:
    """Refuse a TIFF whose strips or tiles point past the end of the file (a truncated download or copy).

    Looks at the first and last IFD (where writers put the data last), so a long stack costs two IFDs.

    Args:
        tif: An open ``tifffile.TiffFile`` (only its IFDs are looked at, no pixel is read).
        path: The file, for the message.

    Raises:
        FileFormatError: Naming the file, its size and the size its IFDs need.
    """
    size = Path(path).stat().st_size
    needed = 0
    pages = tif.pages  # type: ignore[attr-defined]
    if not len(pages):
        raise FileFormatError(f"{path}: no image directory could be read (the first one lies past the end of "
                              f"the file's {size} bytes?); the file is truncated or damaged.")  # fmt: skip
    for page in {id(p): p for p in (pages[0], pages[len(pages) - 1])}.values() if len(pages) else ():
        offsets, counts = getattr(page, "dataoffsets", ()), getattr(page, "databytecounts", ())
        if len(offsets) and len(counts):
            needed = max(needed, max(int(o) + int(c) for o, c in zip(offsets, counts)))
    if needed > size:
        raise FileFormatError(
            f"{path}: the TIFF's image data run to byte {needed} but the file has {size} bytes; "
            "the file is truncated (copy or download it again)."
        )
