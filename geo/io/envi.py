"""ENVI radiance cubes (AVIRIS-NG, PRISMA or EnMAP exports) read lazily with ``spectral``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import DataNotFoundError, FileFormatError
from hyperplex.common.formats import read_head
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


def open_envi(path: str | Path, *, chunks: Any = None, fill: float | None = FILL_VALUE) -> xr.DataArray:
    """Open an ENVI cube lazily as a ``(band, y, x)`` DataArray with wavelength coordinates.

    Args:
        path: The header or the data file.
        chunks: dask chunks for the memmap (default: whole bands in 512-row blocks).
        fill: Value to treat as no data (the header's ``data ignore value`` wins), becomes NaN.

    Returns:
        The cube; attributes ``crs`` and ``geotransform`` (GDAL order) when the header has map info.

    Raises:
        DataNotFoundError: If the header or data file is missing.
        FileFormatError: If the header cannot be parsed.
    """
    import dask.array as da
    import spectral.io.envi as envi
    import xarray as xr

    header = envi_header_path(path)
    if header is None:
        raise DataNotFoundError(f"{path}: no ENVI header (.hdr) found next to it.")
    data_file = _data_path(header)
    try:
        image = envi.open(str(header), str(data_file))
    except (envi.EnviException, ValueError, OSError) as err:
        raise FileFormatError(f"{header}: not a readable ENVI header ({err}).") from err
    channels = channels_from_envi_header(image.metadata, source=str(header))
    ignore = image.metadata.get("data ignore value", fill)
    mm = image.open_memmap(interleave="bip")  # (rows, cols, bands) view, nothing read
    arr = da.from_array(mm, chunks=chunks or (512, -1, -1)).transpose(2, 0, 1)
    if np.issubdtype(arr.dtype, np.floating) and ignore is not None:
        arr = da.where(arr == float(ignore), np.nan, arr)
    attrs = {"source_path": str(data_file), **_georef(data_file)}
    return xr.DataArray(arr, dims=("band", "y", "x"), coords=channels.to_xarray_coords("band"), attrs=attrs)
