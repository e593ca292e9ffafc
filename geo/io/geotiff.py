"""Multi-band GeoTIFF / COG cubes with per-band wavelength metadata (read and write)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hyperplex.common.atomic import atomic_path
from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import DataNotFoundError, FileFormatError, HyperplexError
from hyperplex.common.filechecks import check_tiff_extent
from hyperplex.common.formats import tiff_header
from hyperplex.common.lazyread import guarded_getter
from hyperplex.geo.io.envi import channels_from_envi_header
from hyperplex.geo.io.validate import check_band_order, spacing_fwhm

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


def _checked_tiff(p: Path) -> None:
    """Refuse a truncated TIFF before GDAL fails on a missing tile in the middle of a computation."""
    import tifffile

    try:
        with tifffile.TiffFile(p) as tif:
            check_tiff_extent(tif, p)
    except (tifffile.TiffFileError, ValueError, OSError) as err:
        raise FileFormatError(f"{p}: not a readable TIFF file ({err}).") from err


def _georeference(da: xr.DataArray, p: Path) -> dict[str, Any]:
    """``crs`` and ``geotransform`` attributes; a file without a CRS has no map position (warned)."""
    if da.rio.crs is None:
        warnings.warn(f"{p}: no CRS; the cube has pixel coordinates only (no lon/lat, no ground pixel size).",
                      UserWarning, stacklevel=3)  # fmt: skip
        return {"crs": None, "geotransform": None}
    return {"crs": da.rio.crs.to_wkt(), "geotransform": tuple(da.rio.transform().to_gdal())}


def open_geotiff(path: str | Path, *, chunks: Any = None) -> xr.DataArray:
    """Open a multi-band GeoTIFF/COG lazily as a ``(band, y, x)`` DataArray with channel coordinates.

    Bands with wavelengths but no FWHM get the band spacing as FWHM (a warning, and the attribute
    ``fwhm_source="band spacing"``); a file without a CRS gets ``crs`` and ``geotransform`` None (a
    warning): its pixels have no map position.

    Raises:
        DataNotFoundError: If the file does not exist.
        FileFormatError: If GDAL cannot read it, it is truncated, or band wavelengths repeat.
    """
    import rasterio
    import rioxarray

    p = Path(path)
    if not p.is_file():
        raise DataNotFoundError(f"{p}: no such file.")
    _checked_tiff(p)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(p) as src:
                channels = check_band_order(_file_channels(src, p), p)
                blocks = (1, *src.block_shapes[0])
            da = rioxarray.open_rasterio(p, masked=True, lock=False, cache=False)  # lazily indexed, not dask
    except rasterio.errors.RasterioIOError as err:
        raise FileFormatError(f"{p}: not a raster GDAL can read ({err}).") from err
    da = _chunked(da, p, blocks, chunks)
    channels, extra = spacing_fwhm(channels, p)
    da = da.drop_vars("band").assign_coords(channels.to_xarray_coords("band"))
    da.attrs.update(source_path=str(p), **_georeference(da, p), **extra)
    return da


def _chunked(da: xr.DataArray, p: Path, blocks: tuple[int, ...], chunks: Any) -> xr.DataArray:
    """``da`` as dask blocks (rioxarray's automatic ones: one band, whole tiles) whose read errors name the file.

    A corrupt compressed tile is found only when its block is computed; its GDAL error then becomes a
    FileFormatError naming the file and the block (:func:`hyperplex.common.lazyread.guarded_getter`).
    """
    import os

    from dask.array.core import normalize_chunks
    from dask.base import tokenize

    if chunks is None or chunks is True or chunks == "auto":
        chunks = normalize_chunks((1, "auto", "auto"), shape=da.shape, dtype=da.dtype, previous_chunks=blocks)
    token = tokenize(str(p.resolve()), os.path.getmtime(p), chunks)
    return da.chunk(chunks, name_prefix=f"open_geotiff-{token}", token=token,
                    from_array_kwargs={"getitem": guarded_getter(p, "GeoTIFF bands")})  # fmt: skip


def _file_channels(src: Any, p: Path) -> ChannelSet:
    """:func:`geotiff_channels`, malformed tags reported as a FileFormatError naming the file."""
    try:
        return geotiff_channels(src)
    except (ValueError, TypeError) as err:
        if isinstance(err, HyperplexError) and str(p) in str(err):
            raise
        raise FileFormatError(f"{p}: malformed band metadata (wavelength, fwhm tags): {err}.") from err


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
