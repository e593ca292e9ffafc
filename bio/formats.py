"""The microscopy formats of the registry: OME-TIFF, OME-Zarr, plain TIFF stacks, PNG and JPEG.

Importing this module registers them in :data:`hyperplex.common.formats.FORMATS` (``hyperplex.bio``
does on import). The sniffers look only at header bytes (the first TIFF IFD) or the directory layout,
and exclude each other: an OME-TIFF has OME-XML, a TIFF stack has neither OME-XML nor GeoTIFF/GDAL
tags (those are ``hyperplex.geo``'s GeoTIFF cubes). The readers (and dask) load on the first open, so
registering costs napari's start-up nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hyperplex.bio.png_jpeg import is_png_jpeg
from hyperplex.common.formats import FORMATS, Format, tiff_header
from hyperplex.common.image import MultiscaleImage

__all__ = [
    "BIO_FORMATS",
    "OME_TIFF",
    "OME_ZARR",
    "PNG_JPEG",
    "TIFF_STACK",
    "is_ome_tiff",
    "is_ome_zarr",
    "is_png_jpeg",
    "is_tiff_stack",
]

_TIFF_SUFFIXES = (".tif", ".tiff")
_ZARR_MARKERS = ("zarr.json", ".zgroup", ".zattrs", ".zarray")
_NGFF_KEYS = ("multiscales", "bioformats2raw.layout")


def is_ome_tiff(path: str | os.PathLike[str]) -> bool:
    """True for a TIFF whose first ImageDescription is OME-XML. Never raises."""
    header = tiff_header(path)
    return header is not None and header.is_ome


def _zarr_attrs(path: Path) -> dict[str, Any]:
    if (path / "zarr.json").is_file():
        meta = json.loads((path / "zarr.json").read_text())
        attrs = meta.get("attributes", {}) if meta.get("node_type") == "group" else {}
        return attrs.get("ome", attrs)
    if (path / ".zgroup").is_file() and (path / ".zattrs").is_file():
        return json.loads((path / ".zattrs").read_text())
    return {}


def is_ome_zarr(path: str | os.PathLike[str]) -> bool:
    """True for a zarr group (v2 or v3) with OME-NGFF ``multiscales`` or a ``bioformats2raw.layout``. Never raises."""
    p = Path(path)
    try:
        attrs = _zarr_attrs(p) if p.is_dir() else {}
        return isinstance(attrs, dict) and any(attrs.get(key) for key in _NGFF_KEYS)
    except (OSError, ValueError, AttributeError):
        return False


def _tiffs_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in _TIFF_SUFFIXES and p.is_file())


def is_tiff_stack(path: str | os.PathLike[str]) -> bool:
    """True for a plain TIFF (not OME, not GeoTIFF/GDAL) or a folder of TIFFs that is not a zarr store. Never raises."""
    p = Path(path)
    if p.is_dir():
        if any((p / marker).exists() for marker in _ZARR_MARKERS):
            return False
        files = _tiffs_in(p)
        return bool(files) and tiff_header(files[0]) is not None
    header = tiff_header(p)
    return header is not None and not header.is_ome and not header.is_gdal


def open_tiff_stack(path: str | os.PathLike[str], **kwargs: Any) -> MultiscaleImage:
    """Open a plain TIFF stack; a folder holding a single TIFF is that file (its pages or OME channels).

    Args:
        path: A TIFF file or a folder of TIFF files.
        **kwargs: Passed to :func:`~hyperplex.bio.read_tiff_stack` (or the single file's reader).
    """
    p = Path(path)
    if p.is_dir():
        files = _tiffs_in(p)
        if len(files) == 1:
            return FORMATS.require(files[0], "microscopy").open(files[0], **kwargs)
    from hyperplex.bio.tiff_stack import read_tiff_stack

    return read_tiff_stack(p, **kwargs)


def open_ome_tiff(path: str | os.PathLike[str], **kwargs: Any) -> MultiscaleImage:
    """:func:`~hyperplex.bio.read_ome_tiff`, imported on first use."""
    from hyperplex.bio.ome_tiff import read_ome_tiff

    return read_ome_tiff(path, **kwargs)


def open_ome_zarr(path: str | os.PathLike[str], **kwargs: Any) -> MultiscaleImage:
    """:func:`~hyperplex.bio.read_ome_zarr`, imported on first use."""
    from hyperplex.bio.ome_zarr import read_ome_zarr

    return read_ome_zarr(path, **kwargs)


def open_png_jpeg(path: str | os.PathLike[str], **kwargs: Any) -> MultiscaleImage:
    """:func:`~hyperplex.bio.png_jpeg.read_png_jpeg`, imported on first use."""
    from hyperplex.bio.png_jpeg import read_png_jpeg

    return read_png_jpeg(path, **kwargs)


OME_TIFF = FORMATS.register(Format("ome-tiff", "microscopy", is_ome_tiff, open_ome_tiff, open_ome_tiff,
                                   "an OME-TIFF (.ome.tif)"))  # fmt: skip
OME_ZARR = FORMATS.register(Format("ome-zarr", "microscopy", is_ome_zarr, open_ome_zarr, open_ome_zarr,
                                   "an OME-Zarr image (a zarr group with NGFF 0.4/0.5 multiscales)"))  # fmt: skip
TIFF_STACK = FORMATS.register(Format("tiff-stack", "microscopy", is_tiff_stack, open_tiff_stack, open_tiff_stack,
                                     "a plain TIFF stack (a multi-page file or a folder of TIFFs)"))  # fmt: skip
PNG_JPEG = FORMATS.register(Format("png-jpeg", "microscopy", is_png_jpeg, open_png_jpeg, open_png_jpeg,
                                   "a PNG or JPEG image (RGB or grey)"))  # fmt: skip
#: The microscopy formats, in sniffing order.
BIO_FORMATS = (OME_TIFF, OME_ZARR, TIFF_STACK, PNG_JPEG)
