"""ENVI radiance cubes (AVIRIS-NG, PRISMA or EnMAP exports) read lazily with ``spectral``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import DataNotFoundError, FileFormatError

__all__ = ["envi_header_path", "open_envi"]


def envi_header_path(path: str | Path) -> Path | None:
    """The ``.hdr`` belonging to ``path`` (the header itself, ``name.hdr`` or ``name.ext.hdr``), if any."""
    p = Path(path)
    if p.suffix.lower() == ".hdr":
        return p if p.is_file() else None
    for cand in (p.with_suffix(".hdr"), p.with_name(p.name + ".hdr")):
        if cand.is_file():
            return cand
    return None


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


def open_envi(path: str | Path, *, chunks: Any = None, fill: float | None = -9999.0) -> xr.DataArray:
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

    header = envi_header_path(path)
    if header is None:
        raise DataNotFoundError(f"{path}: no ENVI header (.hdr) found next to it.")
    data_file = _data_path(header)
    try:
        image = envi.open(str(header), str(data_file))
    except (envi.EnviException, ValueError, OSError) as err:
        raise FileFormatError(f"{header}: not a readable ENVI header ({err}).") from err
    channels = ChannelSet.from_envi_header(image.metadata, source=str(header))
    ignore = image.metadata.get("data ignore value", fill)
    mm = image.open_memmap(interleave="bip")  # (rows, cols, bands) view, nothing read
    arr = da.from_array(mm, chunks=chunks or (512, -1, -1)).transpose(2, 0, 1)
    if np.issubdtype(arr.dtype, np.floating) and ignore is not None:
        arr = da.where(arr == float(ignore), np.nan, arr)
    attrs = {"source_path": str(data_file), **_georef(data_file)}
    return xr.DataArray(arr, dims=("band", "y", "x"), coords=channels.to_xarray_coords("band"), attrs=attrs)
