"""Orthorectification through a geometry lookup table (GLT), as EMIT distributes it.

``glt_x``/``glt_y`` give, for every cell of the ortho grid, the 1-based sensor sample and line whose
value goes there (0 = no data). Applying it is a gather, so any sensor-geometry product (radiance,
an enhancement map, plume labels) lands on exactly the same grid.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from hyperplex.common.arrays import materialize
from hyperplex.common.errors import InvalidParameterError

__all__ = ["apply_glt", "glt_valid", "orthorectify_dataset", "ortho_transform"]


def glt_valid(glt_x: np.ndarray, glt_y: np.ndarray) -> np.ndarray:
    """Boolean mask of ortho cells that map to a sensor pixel."""
    return (np.asarray(glt_x) != 0) & (np.asarray(glt_y) != 0)


def apply_glt(data: Any, glt_x: np.ndarray, glt_y: np.ndarray, *, fill: float | int = np.nan) -> np.ndarray:
    """Put sensor-geometry data onto the ortho grid.

    Args:
        data: ``(lines, samples)`` or ``(C, lines, samples)`` array (numpy, dask, xarray).
        glt_x: 1-based sample per ortho cell, 0 = no data, ``(ny, nx)``.
        glt_y: 1-based line per ortho cell, 0 = no data, ``(ny, nx)``.
        fill: Value for cells without data (cast to the data's dtype).

    Returns:
        ``(ny, nx)`` or ``(C, ny, nx)`` numpy array.

    Raises:
        InvalidParameterError: If the GLT points outside the data.
    """
    arr = materialize(data)
    gx, gy = np.abs(np.asarray(glt_x, dtype=np.int64)), np.abs(np.asarray(glt_y, dtype=np.int64))
    valid = glt_valid(gx, gy)
    lines, samples = arr.shape[-2:]
    if valid.any() and (gy[valid].max() > lines or gx[valid].max() > samples):
        raise InvalidParameterError(
            f"GLT points to line {gy[valid].max()} / sample {gx[valid].max()} but the data is {lines} x {samples}; "
            "was the data cropped or transposed?"
        )
    out = np.full(arr.shape[:-2] + gx.shape, fill, dtype=np.result_type(arr.dtype, np.min_scalar_type(fill)))
    out[..., valid] = arr[..., gy[valid] - 1, gx[valid] - 1]
    return out


def ortho_transform(geotransform: Any) -> Any:
    """The ortho grid's affine transform (rasterio ``Affine``) from a GDAL geotransform."""
    from affine import Affine

    return Affine.from_gdal(*[float(v) for v in geotransform])


def orthorectify_dataset(ds: xr.Dataset) -> xr.Dataset:
    """Orthorectify every ``(…, downtrack, crosstrack)`` variable of :func:`open_emit`'s dataset.

    Returns:
        Dataset with dims ``(band, y, x)``; ``latitude``/``longitude`` coordinates of pixel centres and
        the CRS and transform written with rioxarray.
    """
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    from hyperplex.geo.io.emit import ortho_coords

    gx, gy = ds["glt_x"].values, ds["glt_y"].values
    lat, lon = ortho_coords(np.asarray(ds.attrs["geotransform"]), gx.shape)
    out = xr.Dataset(coords={"y": lat, "x": lon})
    for name, var in ds.data_vars.items():
        if var.dims[-2:] != ("downtrack", "crosstrack"):
            continue
        dims = (*var.dims[:-2], "y", "x")
        coords = {k: v for k, v in var.coords.items() if set(v.dims) <= set(var.dims[:-2])}
        out[name] = xr.DataArray(apply_glt(var.data, gx, gy), dims=dims, coords=coords, attrs=var.attrs)
    out = out.assign_coords(latitude=("y", lat), longitude=("x", lon))
    out.attrs = dict(ds.attrs)
    out = out.rio.write_crs(ds.attrs.get("crs", "EPSG:4326")).rio.write_transform(
        ortho_transform(ds.attrs["geotransform"])
    )
    return out
