"""Lazy reader for NASA EMIT L1B radiance (and L2A reflectance) NetCDF granules.

The granule stores ``radiance`` as (downtrack, crosstrack, bands) with fill -9999, band centres in
``sensor_band_parameters`` and the geolocation plus the GLT (1-based; 0 = no data) in ``location``.
``geotransform`` and ``spatial_ref`` describe only the orthorectified (GLT) grid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import DataNotFoundError, FileFormatError

__all__ = ["EMIT_FILL", "emit_channels", "is_emit", "open_emit", "ortho_coords"]

EMIT_FILL = -9999.0
_DATA_VARS = ("radiance", "reflectance")


def _require_file(path: Path) -> None:
    if not path.exists():
        raise DataNotFoundError(f"{path}: no such file; check the path (EMIT granules end in .nc).")
    if path.is_dir():
        raise FileFormatError(f"{path} is a directory; pass an EMIT NetCDF file.")


def is_emit(path: str | Path) -> bool:
    """True if ``path`` looks like an EMIT NetCDF granule (HDF5 with a radiance/reflectance variable)."""
    import h5py

    p = Path(path)
    if not p.is_file() or p.suffix.lower() not in (".nc", ".nc4", ".h5"):
        return False
    try:
        with h5py.File(p, "r") as f:
            return any(v in f for v in _DATA_VARS) and "sensor_band_parameters" in f
    except OSError:
        return False


def _open_group(path: Path, group: str | None, chunks: Any) -> xr.Dataset:
    try:
        return xr.open_dataset(path, engine="h5netcdf", group=group, chunks=chunks, mask_and_scale=True)
    except OSError as err:
        where = f"group '{group}'" if group else "root"
        raise FileFormatError(f"{path}: cannot read {where} as NetCDF4/HDF5 ({err}); is this an EMIT granule?") from err


def emit_channels(path: str | Path) -> ChannelSet:
    """Band centres, FWHM and (where present) good-band flags of an EMIT granule.

    Raises:
        FileFormatError: If the ``sensor_band_parameters`` group or its variables are missing.
    """
    p = Path(path)
    _require_file(p)
    sbp = _open_group(p, "sensor_band_parameters", None)
    missing = [v for v in ("wavelengths", "fwhm") if v not in sbp]
    if missing:
        raise FileFormatError(f"{p}: group 'sensor_band_parameters' lacks {missing}; not an EMIT L1B/L2A granule.")
    good = sbp["good_wavelengths"].values.astype(bool) if "good_wavelengths" in sbp else None
    return ChannelSet.from_wavelengths(sbp["wavelengths"].values, sbp["fwhm"].values, good=good)


def ortho_coords(geotransform: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre latitudes (rows) and longitudes (cols) of the GLT grid."""
    gt = np.asarray(geotransform, dtype=np.float64)
    lat = gt[3] + (np.arange(shape[0]) + 0.5) * gt[5]
    lon = gt[0] + (np.arange(shape[1]) + 0.5) * gt[1]
    return lat, lon


def _data_var(ds: xr.Dataset, path: Path) -> str:
    for name in _DATA_VARS:
        if name in ds:
            return name
    raise FileFormatError(f"{path}: no 'radiance' or 'reflectance' variable at the root; not an EMIT granule.")


def _read_glt(path: Path, loc: xr.Dataset) -> np.ndarray:
    missing = [v for v in ("glt_x", "glt_y") if v not in loc]
    if missing:
        raise FileFormatError(f"{path}: group 'location' lacks {missing}; cannot orthorectify this granule.")
    glt = np.stack([loc["glt_x"].fillna(0).values, loc["glt_y"].fillna(0).values]).astype(np.int64)
    return np.abs(glt)  # ENVI convention: negative entries mark repeated pixels


def open_emit(path: str | Path, *, chunks: Any = None, ortho: bool = False) -> xr.Dataset:
    """Open an EMIT L1B RAD (or L2A RFL) granule lazily as an xarray Dataset.

    The data variable (``radiance`` or ``reflectance``) comes channel-first with dims
    ``(band, downtrack, crosstrack)``, fill as NaN, and coordinates ``wavelength``, ``fwhm`` (and
    ``good_wavelengths``) on ``band``. ``lat``, ``lon``, ``elev`` and the GLT (``glt_x``, ``glt_y``,
    1-based, 0 = no data) are included, and the attributes ``crs`` (WKT) and ``geotransform`` (GDAL
    order, of the ortho grid only: it does not georeference sensor-geometry arrays). Nothing is read
    until values are asked for.

    Args:
        path: The granule.
        chunks: dask chunks (e.g. ``{"downtrack": 256}``); None gives lazily indexed arrays without dask.
        ortho: If True, orthorectify through the GLT: dims ``(band, y, x)`` on the file's ortho grid
            with ``latitude``/``longitude`` coordinates and the CRS written (rioxarray). This reads
            the whole cube.

    Returns:
        The dataset.

    Raises:
        DataNotFoundError: If the file does not exist.
        FileFormatError: If a group or variable of the EMIT layout is missing.
    """
    p = Path(path)
    _require_file(p)
    root = _open_group(p, None, chunks)
    name = _data_var(root, p)
    channels = emit_channels(p)
    loc = _open_group(p, "location", None)
    cube = root[name].rename({"bands": "band"}).transpose("band", "downtrack", "crosstrack")
    cube = cube.assign_coords(channels.to_xarray_coords("band"))
    ds = xr.Dataset({name: cube})
    for var in ("lat", "lon", "elev"):
        if var in loc:
            ds[var] = loc[var]
    glt = _read_glt(p, loc)
    ds["glt_x"] = (("ortho_y", "ortho_x"), glt[0].astype(np.int32))
    ds["glt_y"] = (("ortho_y", "ortho_x"), glt[1].astype(np.int32))
    ds.attrs = {**root.attrs, "source_path": str(p), "data_variable": name}
    ds.attrs["crs"] = str(root.attrs.get("spatial_ref", "EPSG:4326"))
    if "geotransform" in root.attrs:
        ds.attrs["geotransform"] = tuple(float(v) for v in np.asarray(root.attrs["geotransform"]))
    elif ortho:
        raise FileFormatError(f"{p}: no global 'geotransform' attribute; cannot orthorectify (use ortho=False).")
    if ortho:
        from hyperplex.geo.ortho import orthorectify_dataset

        return orthorectify_dataset(ds)
    return ds
