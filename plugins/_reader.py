"""npe2 reader: microscopy (OME-TIFF, TIFF stacks, OME-Zarr) and hyperspectral (EMIT NetCDF, ENVI, GeoTIFF).

``get_reader`` only sniffs headers and never raises; the returned function opens the data lazily
(dask levels) through ``hyperplex.bio`` or ``hyperplex.geo`` and turns it into layer-data tuples.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from hyperplex.plugins._formats import sniff_format
from hyperplex.plugins._layers import LayerDataTuple, LayerStack, image_layer_data

__all__ = ["get_reader", "open_stack", "read_path"]

_GEO_FORMATS = ("geotiff", "netcdf", "envi")
_BIO_FORMATS = ("tiff", "zarr")


def _single_path(path: str | os.PathLike[str] | list[Any]) -> str | None:
    if isinstance(path, (list, tuple)):
        return str(path[0]) if len(path) == 1 else None
    return os.fspath(path) if isinstance(path, (str, os.PathLike)) else None


def get_reader(path: str | list[str]) -> Callable[[str | list[str]], list[LayerDataTuple]] | None:
    """Return a reader function for ``path``, or None when the plugin cannot read it. Never raises.

    Args:
        path: One path (or a one-element list) to a file or a Zarr directory.

    Returns:
        A function taking the path and returning layer-data tuples, or None.
    """
    try:
        single = _single_path(path)
        if single is None:
            return None
        kind = sniff_format(single)
        if kind is None or not _confirmed(kind, single):
            return None
        return partial(read_path, kind=kind)
    except Exception:  # the reader contract: never raise from get_reader
        return None


def _confirmed(kind: str, path: str) -> bool:
    """Ask ``hyperplex.geo`` whether it recognises a NetCDF or ENVI file (not every HDF5 file is EMIT)."""
    if kind not in ("netcdf", "envi"):
        return True
    from hyperplex.geo.io import sniff_cube

    return sniff_cube(path) in ("emit", "envi")


def read_path(path: str | list[str], *, kind: str | None = None) -> list[LayerDataTuple]:
    """Open ``path`` and return its layer-data tuples (one layer per channel, or a band-axis cube).

    Args:
        path: File or Zarr directory (or a one-element list).
        kind: Format key from :func:`~hyperplex.plugins._formats.sniff_format`; sniffed when None.

    Returns:
        Layer-data tuples for napari.

    Raises:
        FileFormatError: If the path is not a supported format.
    """
    single = _single_path(path)
    return image_layer_data(open_stack(single, kind=kind))


def open_stack(path: str | os.PathLike[str], *, kind: str | None = None) -> LayerStack:
    """Open a supported file lazily as a :class:`LayerStack`.

    Args:
        path: File or Zarr directory.
        kind: Format key; sniffed when None.

    Returns:
        The stack (levels stay lazy).

    Raises:
        FileFormatError: If the format is not supported.
    """
    from hyperplex.common.errors import FileFormatError

    kind = kind or sniff_format(path)
    if kind in _GEO_FORMATS:
        return _open_geo(path)
    if kind in _BIO_FORMATS:
        return _open_bio(path)
    raise FileFormatError(
        f"{path}: not a format hyperplex reads (OME-TIFF, TIFF stack, OME-Zarr, EMIT NetCDF, ENVI, GeoTIFF)."
    )


def _stem(path: str | os.PathLike[str]) -> str:
    name = Path(path).name
    for suffix in (".ome.tiff", ".ome.tif", ".ome.zarr", ".tiff", ".tif", ".zarr", ".nc", ".hdr", ".img"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _geo_pixel_size(cube: Any) -> tuple[tuple[float, float] | None, str | None]:
    try:
        res_x, res_y = cube.rio.resolution()
        crs = cube.rio.crs
    except Exception:  # not georeferenced on a grid (e.g. an EMIT swath)
        return None, None
    units = "degree" if crs is not None and crs.is_geographic else "meter"
    return (abs(float(res_y)), abs(float(res_x))), units


def _swath_pixel_size(cube: Any) -> tuple[tuple[float, float] | None, str | None]:
    """Nominal ground pixel (m) of a swath in sensor geometry, from EMIT's ``spatialResolution`` (degrees)."""
    try:
        from hyperplex.geo.geodesy import cell_area_m2

        res = float(cube.attrs["spatialResolution"])
        lat = (float(cube.attrs["northernmost_latitude"]) + float(cube.attrs["southernmost_latitude"])) / 2
        side = float(np.sqrt(cell_area_m2(res, res, lat)))
    except (KeyError, TypeError, ValueError):
        return None, None
    return (side, side), "meter"


def _open_geo(path: str | os.PathLike[str]) -> LayerStack:
    from hyperplex.common.channels import ChannelSet
    from hyperplex.geo.io import open_cube

    cube = open_cube(path, chunks={})
    channels = ChannelSet.from_xarray(cube)
    pixel_size, units = _geo_pixel_size(cube)
    if pixel_size is None:
        pixel_size, units = _swath_pixel_size(cube)
    return LayerStack(
        [cube.data],
        channels,
        name=_stem(path),
        pixel_size=pixel_size,
        units=units,
        source=os.fspath(path),
        extra={"domain": "geo"},
    )


def _open_bio(path: str | os.PathLike[str]) -> LayerStack:
    from hyperplex.bio import open_image

    image = open_image(path)
    return LayerStack(
        list(image.levels),
        image.channels,
        name=_stem(path),
        pixel_size=image.pixel_size_um,
        units="micrometer" if image.pixel_size_um is not None else None,
        source=os.fspath(path),
        extra={"domain": "bio", "format": image.format},
    )
