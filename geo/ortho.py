"""Orthorectification through a geometry lookup table (GLT), as EMIT distributes it.

``glt_x``/``glt_y`` give, for every cell of the ortho grid, the 1-based sensor sample and line whose
value goes there (0 = no data). Applying it is a gather, so any sensor-geometry product (radiance,
an enhancement map, plume labels) lands on exactly the same grid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from hyperplex.common.arrays import materialize
from hyperplex.common.errors import InvalidParameterError

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["apply_glt", "gather_glt", "glt_index", "glt_valid", "orthorectify_dataset", "ortho_transform"]


def glt_valid(glt_x: np.ndarray, glt_y: np.ndarray) -> np.ndarray:
    """Boolean mask of ortho cells that map to a sensor pixel."""
    return (np.asarray(glt_x) != 0) & (np.asarray(glt_y) != 0)


def apply_glt(data: Any, glt_x: np.ndarray, glt_y: np.ndarray, *, fill: float | int = np.nan) -> np.ndarray:
    """Put sensor-geometry data onto the ortho grid.

    One gather through flat indices (negative GLT entries, which mark repeated pixels, count by their
    absolute value), then the cells without data set to ``fill``.

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
    return gather_glt(arr, *glt_index(glt_x, glt_y, *arr.shape[-2:]), fill=fill)


def gather_glt(arr: np.ndarray, index: np.ndarray, valid: np.ndarray, *, fill: float | int = np.nan) -> np.ndarray:
    """:func:`apply_glt` with the GLT's flat index already made by :func:`glt_index` (reuse it across layers).

    Args:
        arr: ``(lines, samples)`` or ``(C, lines, samples)`` numpy array.
        index: Flat sensor index per ortho cell, from :func:`glt_index`.
        valid: Ortho cells with data, from :func:`glt_index`.
        fill: Value for cells without data (cast to the data's dtype).

    Returns:
        ``(ny, nx)`` or ``(C, ny, nx)`` numpy array.
    """
    lead = arr.shape[:-2]
    out = np.empty(lead + valid.shape, dtype=np.result_type(arr.dtype, np.min_scalar_type(fill)))
    if not valid.any():
        out.fill(fill)
        return out
    flat_out, flat_in = out.reshape(*lead, -1), arr.reshape(*lead, -1)
    if out.dtype == arr.dtype:
        np.take(flat_in, index, axis=-1, out=flat_out, mode="clip")  # indices checked: clip never clips
    else:
        flat_out[...] = np.take(flat_in, index, axis=-1, mode="clip")
    np.copyto(out, out.dtype.type(fill), where=~valid)
    return out


def glt_index(glt_x: np.ndarray, glt_y: np.ndarray, lines: int, samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat sensor index per ortho cell (0 where no data) and the cells with data, checked against the shape.

    Args:
        glt_x: 1-based sample per ortho cell, 0 = no data, ``(ny, nx)``.
        glt_y: 1-based line per ortho cell, 0 = no data, ``(ny, nx)``.
        lines: Sensor lines of the data.
        samples: Sensor samples of the data.

    Returns:
        ``(index, valid)``: ``(ny * nx,)`` intp indices into the ``lines * samples`` pixels, ``(ny, nx)`` bool.

    Raises:
        InvalidParameterError: If the GLT points outside the data.
    """
    glt_x, glt_y = np.asarray(glt_x), np.asarray(glt_y)
    narrow = max(glt_x.dtype.itemsize, glt_y.dtype.itemsize) <= 4 and lines * samples < 2**31
    work = np.int32 if narrow else np.intp  # int32 GLTs (as stored) in int32: half the memory traffic
    gx, gy = np.abs(glt_x, dtype=work), np.abs(glt_y, dtype=work)
    valid = np.minimum(gx, gy) > 0
    if valid.any():
        top_y, top_x = np.max(gy, where=valid, initial=0), np.max(gx, where=valid, initial=0)
        if top_y > lines or top_x > samples:
            raise InvalidParameterError(
                f"GLT points to line {top_y} / sample {top_x} but the data is {lines} x {samples}; "
                "was the data cropped or transposed?"
            )
    gy *= samples  # the flat index (y - 1) * samples + (x - 1), 0 where no data
    gy += gx
    gy -= samples + 1
    np.multiply(gy, valid, out=gy)
    return gy.astype(np.intp, copy=False).reshape(-1), valid


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
    import xarray as xr

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
