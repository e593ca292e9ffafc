"""Cheap format sniffing for the napari reader. Qt-free, and imports no heavy library at module level.

Each sniffer answers "is this path plausibly format X?" from a few header bytes or the directory
layout; it returns False (never raises) for anything else, including missing paths.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["is_envi", "is_geotiff", "is_netcdf", "is_tiff", "is_tiff_folder", "is_zarr", "sniff_format"]

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_GEO_TAGS = (33550, 33922, 34264, 34735)  # ModelPixelScale, ModelTiepoint, ModelTransformation, GeoKeyDirectory


def _head(path: Path, size: int = 8) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(size)
    except OSError:
        return b""


def is_tiff(path: str | os.PathLike[str]) -> bool:
    """True for a regular file with a TIFF/BigTIFF signature whose first image tifffile can parse."""
    p = Path(path)
    if not (p.is_file() and _head(p, 4) in _TIFF_MAGIC):
        return False
    try:
        import tifffile

        with tifffile.TiffFile(p) as tif:
            return len(tif.series) > 0 and len(tif.series[0].shape) >= 2
    except Exception:  # truncated or corrupt
        return False


def is_geotiff(path: str | os.PathLike[str]) -> bool:
    """True for a TIFF whose first page carries GeoTIFF georeferencing tags."""
    if not is_tiff(path):
        return False
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            tags = tif.pages[0].tags
            return any(code in tags for code in _GEO_TAGS)
    except Exception:  # a corrupt TIFF is not a GeoTIFF
        return False


def is_netcdf(path: str | os.PathLike[str]) -> bool:
    """True for a NetCDF-4/HDF5 file that opens and holds at least one 3-D variable (a cube)."""
    p = Path(path)
    if not (p.is_file() and _head(p, 8) == _HDF5_MAGIC):
        return False
    try:
        import h5py

        found: list[str] = []
        with h5py.File(p, "r") as h5:
            h5.visititems(lambda name, obj: found.append(name) if getattr(obj, "ndim", 0) == 3 else None)
        return bool(found)
    except Exception:  # truncated or not HDF5
        return False


def _envi_header(p: Path) -> Path | None:
    if p.suffix.lower() == ".hdr":
        return p
    for candidate in (p.with_suffix(".hdr"), p.with_name(p.name + ".hdr")):
        if candidate.is_file():
            return candidate
    return None


def is_envi(path: str | os.PathLike[str]) -> bool:
    """True for an ENVI header (``.hdr`` starting with ``ENVI``) or a data file next to one."""
    p = Path(path)
    if not p.is_file():
        return False
    header = _envi_header(p)
    return header is not None and header.is_file() and _head(header, 4) == b"ENVI"


def is_zarr(path: str | os.PathLike[str]) -> bool:
    """True for an OME-Zarr image: a Zarr v3 group with ``ome.multiscales`` or a v2 group with ``multiscales``."""
    import json

    p = Path(path)
    if not p.is_dir():
        return False
    try:
        if (p / "zarr.json").is_file():
            attrs = json.loads((p / "zarr.json").read_text()).get("attributes", {})
            return "multiscales" in attrs.get("ome", attrs)
        if (p / ".zattrs").is_file():
            return "multiscales" in json.loads((p / ".zattrs").read_text())
    except (OSError, ValueError, AttributeError):
        return False
    return False


def _is_zarr_store(p: Path) -> bool:
    return any((p / name).is_file() for name in ("zarr.json", ".zgroup", ".zarray", ".zattrs"))


def is_tiff_folder(path: str | os.PathLike[str]) -> bool:
    """True for a directory (not a Zarr store) holding TIFF files: one plane or channel per file."""
    p = Path(path)
    return p.is_dir() and not _is_zarr_store(p) and any(is_tiff(f) for f in sorted(p.glob("*.tif*"))[:1])


def sniff_format(path: str | os.PathLike[str]) -> str | None:
    """Name the format of ``path``: ``"geotiff"``, ``"tiff"``, ``"zarr"``, ``"netcdf"``, ``"envi"`` or None.

    ``"tiff"`` covers OME-TIFF, plain multi-page TIFF and folders of TIFF files (microscopy);
    ``"geotiff"`` a TIFF with georeferencing (remote sensing).

    Args:
        path: A file or directory.

    Returns:
        The format key, or None when the path is none of these (or does not exist).
    """
    try:
        if is_zarr(path):
            return "zarr"
        if is_tiff_folder(path):
            return "tiff"
        if is_geotiff(path):
            return "geotiff"
        if is_tiff(path):
            return "tiff"
        if is_netcdf(path):
            return "netcdf"
        if is_envi(path):
            return "envi"
    except Exception:  # sniffing must never raise
        return None
    return None
