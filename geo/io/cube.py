"""One entry point for hyperspectral cubes: whichever registered hyperspectral format claims the file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from hyperplex.common.formats import FORMATS
from hyperplex.geo.io.formats import GEO_FORMATS  # noqa: F401  (registers EMIT, ENVI and GeoTIFF)

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["open_cube", "sniff_cube"]

_KIND = "hyperspectral"


def sniff_cube(path: str | Path) -> str | None:
    """Which hyperspectral format claims ``path``: ``"emit"``, ``"envi"``, ``"geotiff"``, or None. Never raises."""
    fmt = FORMATS.sniff(path, _KIND)
    return None if fmt is None else fmt.name


def open_cube(path: str | Path, *, chunks: Any = None) -> xr.DataArray:
    """Open a hyperspectral cube lazily as a ``(band, y, x)`` DataArray with wavelength coordinates.

    The reader is the registered hyperspectral format whose sniffer claims the file
    (:data:`hyperplex.common.formats.FORMATS`). EMIT granules come in sensor geometry (dims
    ``band, downtrack, crosstrack``); see :func:`hyperplex.geo.io.open_emit` for geolocation and
    orthorectification.

    Raises:
        DataNotFoundError: If the file does not exist.
        FileFormatError: If no hyperspectral format recognises it.
    """
    return FORMATS.require(path, _KIND, noun="cube").open(path, chunks=chunks)
