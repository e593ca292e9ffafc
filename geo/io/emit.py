"""The EMIT reader: NASA EMIT L1B radiance (and L2A reflectance) NetCDF granules.

The granule stores ``radiance`` as (downtrack, crosstrack, bands) with fill -9999, band centres in
``sensor_band_parameters`` and the geolocation plus the GLT (1-based; 0 = no data) in ``location``.
``geotransform`` and ``spatial_ref`` describe only the orthorectified (GLT) grid.

Two views of the same layout share one set of checks: :func:`open_emit`, a lazy xarray Dataset for
exploration, and :func:`read_emit_geometry` plus :func:`read_emit_block`, which read the GLT once and
then one slab of lines and a contiguous band span at a time straight from HDF5 (the detection
pipeline's chunked path).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import DataNotFoundError, FileFormatError
from hyperplex.common.formats import HDF5_MAGIC, read_head
from hyperplex.geo.nodata import FILL_VALUE

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "EmitGeometry",
    "emit_channels",
    "is_emit",
    "open_emit",
    "ortho_coords",
    "read_emit_block",
    "read_emit_geometry",
]

_DATA_VARS = ("radiance", "reflectance")
_SUFFIXES = (".nc", ".nc4", ".h5")


@dataclass(frozen=True)
class EmitGeometry:
    """Where an EMIT granule's pixels are: sizes, GLT, geolocation and the ortho grid.

    Attributes:
        variable: The data variable, ``"radiance"`` or ``"reflectance"``.
        shape: ``(downtrack, crosstrack)`` of the swath (sensor geometry).
        bands: Number of bands.
        glt: ``(glt_x, glt_y)``, 1-based, 0 = no data, on the ortho grid.
        crs: CRS of the ortho grid (WKT); EPSG:4326 when the file does not say.
        transform: GDAL geotransform of the ortho grid, None when the file has none.
        lat: Pixel latitudes in sensor geometry, None when absent or not asked for.
        lon: Pixel longitudes in sensor geometry, None when absent or not asked for.
    """

    variable: str
    shape: tuple[int, int]
    bands: int
    glt: tuple[np.ndarray, np.ndarray]
    crs: str
    transform: tuple[float, ...] | None
    lat: np.ndarray | None = None
    lon: np.ndarray | None = None


def _require_file(path: Path) -> None:
    if not path.exists():
        raise DataNotFoundError(f"{path}: no such file; check the path (EMIT granules end in .nc).")
    if path.is_dir():
        raise FileFormatError(f"{path} is a directory; pass an EMIT NetCDF file.")


def is_emit(path: str | Path) -> bool:
    """True if ``path`` is an EMIT NetCDF granule (HDF5 with radiance/reflectance and band parameters). Never raises."""
    p = Path(path)
    if p.suffix.lower() not in _SUFFIXES or read_head(p, len(HDF5_MAGIC)) != HDF5_MAGIC:
        return False
    try:
        import h5py

        with h5py.File(p, "r") as f:
            return any(getattr(f.get(v), "ndim", 0) == 3 for v in _DATA_VARS) and "sensor_band_parameters" in f
    except (OSError, ValueError):
        return False


def _open_group(path: Path, group: str | None, chunks: Any) -> xr.Dataset:
    import xarray as xr

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


def _glt_values(dataset: Any) -> np.ndarray:
    """A GLT variable as int64: ``_FillValue`` and NaN become 0 (no data), negatives positive (ENVI repeats)."""
    values = np.asarray(dataset[...])
    fill = dataset.attrs.get("_FillValue")
    bad = ~np.isfinite(values) if values.dtype.kind == "f" else np.zeros(values.shape, bool)
    if fill is not None:
        bad |= values == np.asarray(fill).ravel()[0]
    return np.abs(np.where(bad, 0, values).astype(np.int64))


def _text_attr(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else None if value is None else str(value)


def _data_variable(f: Any, path: Path) -> str:
    for name in _DATA_VARS:
        if getattr(f.get(name), "ndim", 0) == 3:
            return name
    raise FileFormatError(f"{path}: no 3-D 'radiance' or 'reflectance' variable at the root; not an EMIT granule.")


def read_emit_geometry(path: str | Path, *, geolocation: bool = True) -> EmitGeometry:
    """Read an EMIT granule's layout, GLT and (optionally) per-pixel latitude/longitude, but no pixel values.

    Args:
        path: The granule.
        geolocation: Also read ``location/lat`` and ``location/lon`` (two swath-sized arrays).

    Returns:
        The geometry.

    Raises:
        DataNotFoundError: If the file does not exist.
        FileFormatError: If the data variable or ``location/glt_x``/``glt_y`` are missing.
    """
    import h5py

    p = Path(path)
    _require_file(p)
    try:
        f = h5py.File(p, "r")
    except OSError as err:
        raise FileFormatError(f"{p}: cannot read as NetCDF4/HDF5 ({err}); is this an EMIT granule?") from err
    with f:
        name = _data_variable(f, p)
        loc = f.get("location", {})
        missing = [v for v in ("glt_x", "glt_y") if v not in loc]
        if missing:
            raise FileFormatError(f"{p}: group 'location' lacks {missing}; cannot orthorectify this granule.")
        shape, bands = tuple(int(s) for s in f[name].shape[:2]), int(f[name].shape[2])
        glt = (_glt_values(loc["glt_x"]), _glt_values(loc["glt_y"]))
        lat = loc["lat"][...] if geolocation and "lat" in loc else None
        lon = loc["lon"][...] if geolocation and "lon" in loc else None
        crs = _text_attr(f.attrs.get("spatial_ref")) or "EPSG:4326"
        gt = f.attrs.get("geotransform")
        transform = None if gt is None else tuple(float(v) for v in np.asarray(gt).ravel())
    return EmitGeometry(name, shape, bands, glt, crs, transform, lat, lon)


def read_emit_block(path: str | Path, rows: slice, bands: slice, *, variable: str = "radiance") -> np.ndarray:
    """Read lines ``rows`` of the contiguous band span ``bands`` as float32 ``(bands, rows, samples)``, fill as NaN.

    One HDF5 hyperslab read; this is what the detection pipeline calls per chunk of lines.

    Args:
        path: The granule.
        rows: Downtrack lines.
        bands: A contiguous band span (step 1).
        variable: ``"radiance"`` or ``"reflectance"``.

    Returns:
        The block.
    """
    import h5py

    with h5py.File(path, "r") as f:
        block = np.moveaxis(f[variable][rows, :, bands], -1, 0).astype(np.float32, copy=False)
    block[block == FILL_VALUE] = np.nan
    return block


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
    import xarray as xr

    p = Path(path)
    channels = emit_channels(p)
    geometry = read_emit_geometry(p, geolocation=False)
    root, loc = _open_group(p, None, chunks), _open_group(p, "location", None)
    name = geometry.variable
    cube = root[name].rename({"bands": "band"}).transpose("band", "downtrack", "crosstrack")
    ds = xr.Dataset({name: cube.assign_coords(channels.to_xarray_coords("band"))})
    for var in ("lat", "lon", "elev"):
        if var in loc:
            ds[var] = loc[var]
    ds["glt_x"] = (("ortho_y", "ortho_x"), geometry.glt[0].astype(np.int32))
    ds["glt_y"] = (("ortho_y", "ortho_x"), geometry.glt[1].astype(np.int32))
    ds.attrs = {**root.attrs, "source_path": str(p), "data_variable": name, "crs": geometry.crs}
    if geometry.transform is not None:
        ds.attrs["geotransform"] = geometry.transform
    elif ortho:
        raise FileFormatError(f"{p}: no global 'geotransform' attribute; cannot orthorectify (use ortho=False).")
    if ortho:
        from hyperplex.geo.ortho import orthorectify_dataset

        return orthorectify_dataset(ds)
    return ds
