"""Multi-band GeoTIFF / COG cubes with per-band wavelength metadata (read and write)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hyperplex.common.atomic import atomic_path
from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import DataNotFoundError, FileFormatError
from hyperplex.common.formats import tiff_header
from hyperplex.geo.io.envi import channels_from_envi_header

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["geotiff_channels", "is_geotiff", "open_geotiff", "write_geotiff_cube"]

_NUMBER_UNIT = re.compile(r"(\d+(?:\.\d+)?)\s*(nanometers?|micrometers?|nm|um|µm)\b", re.IGNORECASE)


def _from_descriptions(descriptions: list[str | None]) -> ChannelSet | None:
    """Wavelengths parsed from band descriptions such as ``"2300.5 nm"`` or ``"B12 (2.19 um)"``."""
    values, units = [], set()
    for desc in descriptions:
        match = _NUMBER_UNIT.search(desc or "")
        if match is None:
            return None
        values.append(float(match.group(1)))
        units.add(match.group(2).lower().replace("µ", "u")[:2])
    if len(units) != 1:
        return None
    return ChannelSet.from_wavelengths(values, names=[str(d) for d in descriptions], units=units.pop())


def geotiff_channels(src: Any) -> ChannelSet:
    """Channel identity of an open rasterio dataset.

    Looks, in order, for per-band ``wavelength``/``fwhm`` tags (what :func:`write_geotiff_cube`
    writes), an ENVI metadata domain, then wavelengths in band descriptions; else band names.
    """
    tags = [src.tags(b) for b in src.indexes]
    if all("wavelength" in t for t in tags):
        fwhm = [float(t["fwhm"]) for t in tags] if all("fwhm" in t for t in tags) else None
        unit = tags[0].get("wavelength_units", "nm")
        names = [d or None for d in src.descriptions]
        return ChannelSet.from_wavelengths(
            [float(t["wavelength"]) for t in tags], fwhm, names=names if all(names) else None, units=unit
        )
    envi_md = src.tags(ns="ENVI")
    if "wavelength" in envi_md:
        header = {"bands": src.count, **{k.replace("_", " "): _envi_list(v) for k, v in envi_md.items()}}
        return channels_from_envi_header(header, source=str(src.name))
    parsed = _from_descriptions(list(src.descriptions))
    if parsed is not None:
        return parsed
    if all(src.descriptions):
        return ChannelSet.from_names(src.descriptions)
    return ChannelSet.default(src.count)


def _envi_list(value: str) -> Any:
    text = value.strip()
    if text.startswith("{"):
        return [v.strip() for v in text.strip("{}").split(",")]
    return text


def is_geotiff(path: str | Path) -> bool:
    """True for a TIFF with GeoTIFF georeferencing or GDAL band metadata (and no OME-XML). Never raises.

    An ungeoreferenced cube written by :func:`write_geotiff_cube` counts: GDAL stores its per-band
    wavelengths in the GDAL_METADATA tag.
    """
    header = tiff_header(path)
    return header is not None and header.is_gdal and not header.is_ome


def open_geotiff(path: str | Path, *, chunks: Any = None) -> xr.DataArray:
    """Open a multi-band GeoTIFF/COG lazily as a ``(band, y, x)`` DataArray with channel coordinates.

    Raises:
        DataNotFoundError: If the file does not exist.
        FileFormatError: If GDAL cannot read it.
    """
    import rasterio
    import rioxarray

    p = Path(path)
    if not p.is_file():
        raise DataNotFoundError(f"{p}: no such file.")
    try:
        with rasterio.open(p) as src:
            channels = geotiff_channels(src)
        da = rioxarray.open_rasterio(p, chunks=chunks if chunks is not None else True, masked=True, lock=False)
    except rasterio.errors.RasterioIOError as err:
        raise FileFormatError(f"{p}: not a raster GDAL can read ({err}).") from err
    da = da.drop_vars("band").assign_coords(channels.to_xarray_coords("band"))
    da.attrs.update(source_path=str(p), crs=da.rio.crs.to_wkt() if da.rio.crs else None)
    da.attrs["geotransform"] = tuple(da.rio.transform().to_gdal())
    return da


def write_geotiff_cube(
    data: np.ndarray,
    channels: ChannelSet,
    path: str | Path,
    *,
    crs: Any = None,
    transform: Any = None,
    nodata: float | None = np.nan,
    tags: dict[str, str] | None = None,
) -> Path:
    """Write a ``(C, H, W)`` cube as a tiled, compressed GeoTIFF with per-band wavelength tags.

    Args:
        data: The cube.
        channels: One entry per band; wavelengths and FWHM go into band tags, names into descriptions.
        path: Output file (written atomically).
        crs: CRS (anything rasterio accepts).
        transform: Affine transform.
        nodata: No-data value.
        tags: Extra dataset-level tags.

    Returns:
        The path written.
    """
    import rasterio

    arr = np.asarray(data)
    channels = ChannelSet.coerce(channels, arr.shape[0])
    profile = {"driver": "GTiff", "height": arr.shape[1], "width": arr.shape[2], "count": arr.shape[0],
               "dtype": arr.dtype, "crs": crs, "transform": transform, "nodata": nodata, "tiled": True,
               "blockxsize": 256, "blockysize": 256, "compress": "deflate"}  # fmt: skip
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(arr)
        for i in range(arr.shape[0]):
            dst.set_band_description(i + 1, channels.names[i])
            band_tags = {}
            if channels.wavelengths is not None:
                band_tags.update(wavelength=f"{channels.wavelengths[i]:.4f}", wavelength_units="nm")
            if channels.fwhm is not None:
                band_tags["fwhm"] = f"{channels.fwhm[i]:.4f}"
            dst.update_tags(i + 1, **band_tags)
        dst.update_tags(**(tags or {}))
    return Path(path)
