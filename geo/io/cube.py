"""One entry point for hyperspectral cubes: EMIT NetCDF, ENVI or multi-band GeoTIFF."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import xarray as xr

from hyperplex.common.errors import DataNotFoundError, FileFormatError
from hyperplex.geo.io.emit import is_emit, open_emit
from hyperplex.geo.io.envi import envi_header_path, open_envi
from hyperplex.geo.io.geotiff import open_geotiff

__all__ = ["open_cube", "sniff_cube"]

_TIFF = (".tif", ".tiff")


def sniff_cube(path: str | Path) -> str | None:
    """Which reader handles ``path``: ``"emit"``, ``"envi"``, ``"geotiff"``, or None. Never raises."""
    try:
        p = Path(path)
        if not p.is_file():
            return None
        if is_emit(p):
            return "emit"
        if p.suffix.lower() in _TIFF and not p.name.lower().endswith((".ome.tif", ".ome.tiff")):
            return "geotiff"
        if envi_header_path(p) is not None:
            return "envi"
    except (OSError, ValueError):
        return None
    return None


def open_cube(path: str | Path, *, chunks: Any = None) -> xr.DataArray:
    """Open a hyperspectral cube lazily as a ``(band, y, x)`` DataArray with wavelength coordinates.

    EMIT granules come in sensor geometry (dims ``band, downtrack, crosstrack``); see
    :func:`hyperplex.geo.io.open_emit` for geolocation and orthorectification.

    Raises:
        DataNotFoundError: If the file does not exist.
        FileFormatError: If no reader recognises it.
    """
    p = Path(path)
    if not p.exists():
        raise DataNotFoundError(f"{p}: no such file.")
    kind = sniff_cube(p)
    if kind == "emit":
        ds = open_emit(p, chunks=chunks)
        return ds[ds.attrs["data_variable"]].assign_attrs(ds.attrs)
    if kind == "envi":
        return open_envi(p, chunks=chunks)
    if kind == "geotiff":
        return open_geotiff(p, chunks=chunks)
    raise FileFormatError(
        f"{p}: not a recognised cube; expected an EMIT NetCDF (.nc), an ENVI header/data pair or a GeoTIFF."
    )
