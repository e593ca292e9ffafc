"""The hyperspectral formats of the registry: EMIT NetCDF, ENVI and GeoTIFF cubes.

Importing this module registers them in :data:`hyperplex.common.formats.FORMATS` (``hyperplex.geo.io``
does on import). Each format's ``open`` returns the lazy ``(band, y, x)`` DataArray of
:func:`~hyperplex.geo.io.open_cube`; its ``open_image`` wraps that cube in the one container
(:class:`~hyperplex.common.image.MultiscaleImage`) with the ground pixel size, for the napari reader.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hyperplex.common.channels import ChannelSet
from hyperplex.common.formats import FORMATS, Format
from hyperplex.common.image import MultiscaleImage
from hyperplex.geo.io.emit import is_emit, open_emit
from hyperplex.geo.io.envi import is_envi, open_envi
from hyperplex.geo.io.geotiff import is_geotiff, open_geotiff

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["EMIT", "ENVI", "GEOTIFF", "GEO_FORMATS", "cube_image"]


def _open_emit_cube(path: str | Path, *, chunks: Any = None) -> xr.DataArray:
    """The data variable of an EMIT granule, channel-first, with the granule's attributes."""
    ds = open_emit(path, chunks=chunks)
    return ds[ds.attrs["data_variable"]].assign_attrs(ds.attrs)


def _grid_pixel_size(cube: xr.DataArray) -> tuple[tuple[float, float] | None, str | None]:
    try:
        res_x, res_y = cube.rio.resolution()
        crs = cube.rio.crs
    except Exception:  # not georeferenced on a grid (e.g. an EMIT swath)
        return None, None
    units = "degree" if crs is not None and crs.is_geographic else "meter"
    return (abs(float(res_y)), abs(float(res_x))), units


def _swath_pixel_size(cube: xr.DataArray) -> tuple[tuple[float, float] | None, str | None]:
    """Nominal ground pixel (m) of a swath in sensor geometry, from EMIT's ``spatialResolution`` (degrees)."""
    from hyperplex.geo.geodesy import cell_area_m2

    try:
        res = float(cube.attrs["spatialResolution"])
        lat = (float(cube.attrs["northernmost_latitude"]) + float(cube.attrs["southernmost_latitude"])) / 2
        side = float(np.sqrt(cell_area_m2(res, res, lat)))
    except (KeyError, TypeError, ValueError):
        return None, None
    return (side, side), "meter"


def cube_image(cube: xr.DataArray, fmt: str = "memory") -> MultiscaleImage:
    """A hyperspectral cube as the one image container (a single level; pixel size in m or degrees).

    Args:
        cube: ``(band, y, x)`` DataArray from :func:`~hyperplex.geo.io.open_cube`.
        fmt: Registry name of the format it came from.

    Returns:
        The image; ``metadata`` holds ``domain="geo"`` and, when known, ``crs`` and ``geotransform``.
    """
    pixel_size, units = _grid_pixel_size(cube)
    if pixel_size is None:
        pixel_size, units = _swath_pixel_size(cube)
    source = cube.attrs.get("source_path")
    meta = {"domain": "geo", **{k: cube.attrs[k] for k in ("crs", "geotransform") if cube.attrs.get(k) is not None}}
    return MultiscaleImage([cube.data], ChannelSet.from_xarray(cube), pixel_size, source, fmt, meta, units=units)


def _image_opener(fmt: str, open_cube: Any) -> Any:
    def open_image(path: str | Path, *, chunks: Any = None) -> MultiscaleImage:
        image = cube_image(open_cube(path, chunks={} if chunks is None else chunks), fmt)
        image.path = Path(path)
        return image

    open_image.__doc__ = f"Open a {fmt} cube as a MultiscaleImage (dask-backed, one level)."
    return open_image


EMIT = FORMATS.register(Format("emit", "hyperspectral", is_emit, _open_emit_cube,
                               _image_opener("emit", _open_emit_cube), "an EMIT NetCDF granule (.nc)"))  # fmt: skip
ENVI = FORMATS.register(Format("envi", "hyperspectral", is_envi, open_envi, _image_opener("envi", open_envi),
                               "an ENVI header/data pair (.hdr + .img/.dat/...)"))  # fmt: skip
GEOTIFF = FORMATS.register(Format("geotiff", "hyperspectral", is_geotiff, open_geotiff,
                                  _image_opener("geotiff", open_geotiff), "a GeoTIFF/COG cube"))  # fmt: skip
#: The hyperspectral formats, in sniffing order.
GEO_FORMATS = (EMIT, ENVI, GEOTIFF)
