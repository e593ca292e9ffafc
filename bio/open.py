"""``open_image``: recognise a microscopy file or store by its content and open it lazily."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hyperplex.bio.image import MultiscaleImage
from hyperplex.common.errors import DataNotFoundError, FileFormatError

__all__ = ["detect_format", "open_image"]

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_ZARR_MARKERS = ("zarr.json", ".zgroup", ".zattrs")


def detect_format(path: str | os.PathLike[str]) -> str:
    """Say which reader fits ``path``: ``"ome-zarr"``, ``"ome-tiff"`` or ``"tiff-stack"``.

    Decided from the content (zarr metadata files, TIFF magic bytes, OME-XML), not the extension.

    Raises:
        DataNotFoundError: If the path does not exist.
        FileFormatError: If it is none of the supported formats.
    """
    path = Path(path)
    if not path.exists():
        raise DataNotFoundError(f"{path}: no such file or directory.")
    if path.is_dir():
        if any((path / marker).is_file() for marker in _ZARR_MARKERS):
            return "ome-zarr"
        if any(p.suffix.lower() in (".tif", ".tiff") for p in path.iterdir()):
            return "tiff-stack"
        raise FileFormatError(f"{path}: a directory that is neither a zarr store nor a folder of TIFF files.")
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic not in _TIFF_MAGIC:
        raise FileFormatError(
            f"{path}: unknown format (not TIFF, not a zarr directory); hyperplex.bio opens OME-TIFF, "
            "OME-Zarr and TIFF stacks."
        )
    return "ome-tiff" if _is_ome(path) else "tiff-stack"


def _is_ome(path: Path) -> bool:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        return bool(tif.is_ome and tif.ome_metadata)


def open_image(path: str | os.PathLike[str], **kwargs: Any) -> MultiscaleImage:
    """Open an OME-TIFF, OME-Zarr or plain TIFF stack lazily (nothing but metadata is read).

    Args:
        path: File or store.
        **kwargs: Passed to the format's reader (``read_ome_tiff``, ``read_ome_zarr``, ``read_tiff_stack``),
            e.g. ``select={"Z": 0}``.

    Returns:
        The image with every pyramid level, its channels and pixel size.

    Raises:
        DataNotFoundError: If the path does not exist.
        FileFormatError: If the format is unknown or the file is damaged.
        ChannelMismatchError: If channel metadata disagrees with the pixel data.
    """
    from hyperplex.bio.ome_tiff import read_ome_tiff
    from hyperplex.bio.ome_zarr import read_ome_zarr
    from hyperplex.bio.tiff_stack import read_tiff_stack

    readers = {"ome-tiff": read_ome_tiff, "ome-zarr": read_ome_zarr, "tiff-stack": read_tiff_stack}
    single = _only_tiff(Path(path))
    if single is not None:  # a folder holding one TIFF is that file (its pages or OME channels)
        path = single
    return readers[detect_format(path)](path, **kwargs)


def _only_tiff(path: Path) -> Path | None:
    """The single TIFF file inside a folder that is not a zarr store, else None."""
    if not path.is_dir() or any((path / marker).is_file() for marker in _ZARR_MARKERS):
        return None
    tiffs = [p for p in path.iterdir() if p.is_file() and p.suffix.lower() in (".tif", ".tiff")]
    return tiffs[0] if len(tiffs) == 1 else None
