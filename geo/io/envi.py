"""ENVI radiance cubes (AVIRIS-NG, PRISMA or EnMAP exports) read lazily with ``spectral``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import DataNotFoundError, FileFormatError, HyperplexError
from hyperplex.common.filechecks import check_declared_size
from hyperplex.common.formats import read_head
from hyperplex.geo.io.validate import check_band_order, looks_byte_swapped, spacing_fwhm
from hyperplex.geo.nodata import FILL_VALUE

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["channels_from_envi_header", "envi_header_fields", "envi_header_path", "is_envi", "open_envi"]


def envi_header_path(path: str | Path) -> Path | None:
    """The ``.hdr`` belonging to ``path`` (the header itself, ``name.hdr`` or ``name.ext.hdr``), if any."""
    p = Path(path)
    if p.suffix.lower() == ".hdr":
        return p if p.is_file() else None
    for cand in (p.with_suffix(".hdr"), p.with_name(p.name + ".hdr")):
        if cand.is_file():
            return cand
    return None


def envi_header_fields(channels: ChannelSet) -> dict[str, Any]:
    """Fields for an ENVI header (``band names``, ``wavelength``, ``fwhm``, units, ``bbl``) describing ``channels``."""
    header: dict[str, Any] = {"band names": list(channels.names)}
    if channels.wavelengths is not None:
        header["wavelength"] = [f"{w:.6f}" for w in channels.wavelengths]
        header["wavelength units"] = "Nanometers"
    if channels.fwhm is not None:
        header["fwhm"] = [f"{w:.6f}" for w in channels.fwhm]
    if channels.good is not None:
        header["bbl"] = [str(int(g)) for g in channels.good]
    return header


def channels_from_envi_header(header: Mapping[str, Any], *, source: str = "ENVI header") -> ChannelSet:
    """Channels of a parsed ENVI header (``spectral.io.envi.read_envi_header``); inverse of :func:`envi_header_fields`.

    Wavelength units ``Unknown`` are guessed from the values (below 30: µm).

    Raises:
        FileFormatError: If the header has no band count.
        ChannelMismatchError: If the band names or wavelengths do not match the band count.
    """
    if "bands" not in header:
        raise FileFormatError(f"{source}: no 'bands' field; is this an ENVI header?")
    count = int(header["bands"])
    names = header.get("band names")
    if "wavelength" not in header:
        return (ChannelSet(tuple(names)) if names else ChannelSet.default(count)).checked(count, source)
    units = str(header.get("wavelength units", "nm")).strip()
    if units.lower() in ("unknown", ""):
        units = "um" if max(float(w) for w in header["wavelength"]) < 30 else "nm"
    good = header.get("bbl")
    return ChannelSet.from_wavelengths(
        [float(w) for w in header["wavelength"]],
        None if "fwhm" not in header else [float(w) for w in header["fwhm"]],
        names=names,
        good=None if good is None else [float(g) > 0 for g in good],
        units=units,
    ).checked(count, source)


def is_envi(path: str | Path) -> bool:
    """True for an ENVI header (text starting with ``ENVI``) or the data file next to one. Never raises."""
    header = envi_header_path(path) if Path(path).is_file() else None
    return header is not None and read_head(header, 4) == b"ENVI" and (Path(path) != header or _has_data(header))


def _has_data(header: Path) -> bool:
    try:
        return _data_path(header).is_file()
    except DataNotFoundError:
        return False


def _data_path(header: Path) -> Path:
    for cand in [header.with_suffix(ext) for ext in ("", ".img", ".dat", ".bsq", ".bil", ".bip", ".raw")]:
        if cand.is_file() and cand != header:
            return cand
    raise DataNotFoundError(f"{header}: found the ENVI header but no data file next to it (.img, .dat, .bsq, ...).")


def _georef(data_file: Path) -> dict[str, Any]:
    """CRS (WKT) and GDAL geotransform from the header's map info, via GDAL; empty if none."""
    import rasterio

    try:
        with rasterio.open(data_file) as src:
            if src.crs is None:
                return {}
            return {"crs": src.crs.to_wkt(), "geotransform": tuple(src.transform.to_gdal())}
    except rasterio.errors.RasterioError:
        return {}


def _read_header(header: Path) -> Any:
    """Spectral's parameters of the header (shape, dtype, offset), or a FileFormatError naming the file."""
    import spectral.io.envi as envi

    try:
        meta = envi.read_envi_header(str(header))
        envi.check_compatibility(meta)
        return envi.gen_params(meta)
    except (envi.EnviException, ValueError, KeyError, TypeError, OSError) as err:
        raise FileFormatError(f"{header}: not a readable ENVI header ({type(err).__name__}: {err}).") from err


def _check_data(header: Path, data_file: Path, params: Any) -> None:
    """Declared sizes against the data file's size, then the byte order (a small sample), before any use."""
    dtype = np.dtype(params.dtype)
    check_declared_size(data_file, (params.nrows, params.ncols, params.nbands), dtype.itemsize, params.offset)
    count = params.nrows * params.ncols * params.nbands
    step = max(1, count // 4096)
    mm = np.memmap(data_file, dtype=dtype, mode="r", offset=params.offset, shape=(count,))
    if looks_byte_swapped(np.array(mm[::step][:4096])):
        raise FileFormatError(
            f"{header}: the data read as absurd values (e.g. +-3.4e38) with 'byte order = {params.byte_order}'; "
            f"the header's byte order is probably wrong: set it to {1 - params.byte_order}."
        )


def _scaled(arr: Any, meta: dict[str, Any], ignore: Any) -> tuple[Any, dict[str, Any]]:
    """Integer data with a ``reflectance scale factor``: as float32 reflectance, the ignore value as NaN."""
    import dask.array as da

    factor = meta.get("reflectance scale factor")
    if factor is None or not np.issubdtype(arr.dtype, np.integer):
        return arr, {}
    scaled = arr.astype(np.float32) / np.float32(float(factor))
    if ignore is not None:
        scaled = da.where(arr == float(ignore), np.nan, scaled)
    return scaled, {"units": "reflectance", "scale_factor": float(factor)}


def _channels(meta: dict[str, Any], header: Path) -> ChannelSet:
    """The header's channels, any malformed field reported as a FileFormatError naming the header."""
    try:
        channels = channels_from_envi_header(meta, source=str(header))
    except (ValueError, TypeError) as err:
        if isinstance(err, HyperplexError) and str(header) in str(err):
            raise
        raise FileFormatError(f"{header}: malformed band metadata (wavelength, fwhm, bbl): {err}.") from err
    return check_band_order(channels, header)


def open_envi(path: str | Path, *, chunks: Any = None, fill: float | None = FILL_VALUE) -> xr.DataArray:
    """Open an ENVI cube lazily as a ``(band, y, x)`` DataArray with wavelength coordinates.

    The header's sizes are checked against the data file's size and a small sample against a wrong
    ``byte order`` before anything else; integer data with a ``reflectance scale factor`` come back
    as float32 reflectance (attribute ``units="reflectance"``).

    Args:
        path: The header or the data file.
        chunks: dask chunks for the memmap (default: whole bands in 512-row blocks).
        fill: Value to treat as no data (the header's ``data ignore value`` wins), becomes NaN.

    Returns:
        The cube; attributes ``crs`` and ``geotransform`` (GDAL order) when the header has map info.

    Raises:
        DataNotFoundError: If the header or data file is missing.
        FileFormatError: If the header cannot be parsed, declares more data than the file holds, or
            its byte order is wrong.
    """
    import dask.array as da
    import spectral.io.envi as envi
    import xarray as xr

    header = envi_header_path(path)
    if header is None:
        raise DataNotFoundError(f"{path}: no ENVI header (.hdr) found next to it.")
    data_file = _data_path(header)
    params = _read_header(header)
    _check_data(header, data_file, params)
    try:
        image = envi.open(str(header), str(data_file))
    except (envi.EnviException, ValueError, OSError) as err:
        raise FileFormatError(f"{header}: not a readable ENVI header ({err}).") from err
    channels, fwhm_attrs = spacing_fwhm(_channels(image.metadata, header), header)
    ignore = image.metadata.get("data ignore value", fill)
    mm = image.open_memmap(interleave="bip")  # (rows, cols, bands) view, nothing read
    arr = da.from_array(mm, chunks=chunks or (512, -1, -1)).transpose(2, 0, 1)
    if np.issubdtype(arr.dtype, np.floating) and ignore is not None:
        arr = da.where(arr == float(ignore), np.nan, arr)
    arr, scale_attrs = _scaled(arr, image.metadata, ignore)
    attrs = {"source_path": str(data_file), **_georef(data_file), **scale_attrs, **fwhm_attrs}
    return xr.DataArray(arr, dims=("band", "y", "x"), coords=channels.to_xarray_coords("band"), attrs=attrs)
