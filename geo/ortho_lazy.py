"""Lazy orthorectification: any sensor-geometry DataArray onto the granule's GLT grid, as a dask gather.

:func:`orthorectify` builds, for every output block of the ortho grid, one task that reads the
bounding box of the sensor pixels the block's GLT cells point to (a slice of the source, so lazily
opened data reads only that window) and gathers them. Nothing is read or computed until values are
asked for; memory per task is one band chunk of one bounding box. Values equal those of the eager
:func:`hyperplex.geo.ortho.apply_glt` (a test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hyperplex.common.errors import InvalidParameterError
from hyperplex.geo.ortho import glt_valid, ortho_transform

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["OrthoGrid", "orthorectify"]

#: Default edge (cells) of the ortho grid's blocks.
ORTHO_CHUNK = 512


@dataclass(frozen=True)
class OrthoGrid:
    """A GLT and the map grid it defines.

    Attributes:
        glt_x: 1-based sensor sample per ortho cell, 0 = no data, ``(ny, nx)`` int.
        glt_y: 1-based sensor line per ortho cell, 0 = no data, ``(ny, nx)`` int.
        geotransform: GDAL geotransform of the ortho grid.
        crs: CRS of the ortho grid (WKT or ``"EPSG:…"``).
    """

    glt_x: np.ndarray
    glt_y: np.ndarray
    geotransform: tuple[float, ...]
    crs: str

    @classmethod
    def of(cls, geometry: Any) -> OrthoGrid:
        """The grid of an :func:`~hyperplex.geo.io.open_emit` Dataset, an ``EmitGeometry``, a granule path or a grid.

        Raises:
            FileFormatError: If a granule lacks its GLT.
            InvalidParameterError: If ``geometry`` has no GLT or no geotransform.
        """
        if isinstance(geometry, OrthoGrid):
            return geometry
        if isinstance(geometry, (str, Path)):
            from hyperplex.geo.io.emit import read_emit_geometry

            geometry = read_emit_geometry(geometry, geolocation=False)
        if hasattr(geometry, "data_vars"):
            if "glt_x" not in geometry or "glt_y" not in geometry:
                raise InvalidParameterError("`geometry` Dataset has no glt_x/glt_y: pass open_emit(path)'s Dataset.")
            glt = (np.abs(geometry["glt_x"].values), np.abs(geometry["glt_y"].values))
            gt, crs = geometry.attrs.get("geotransform"), geometry.attrs.get("crs", "EPSG:4326")
        else:
            glt, gt, crs = geometry.glt, geometry.transform, geometry.crs
        if gt is None:
            raise InvalidParameterError("`geometry` has no geotransform: its GLT grid is not georeferenced.")
        return cls(glt[0].astype(np.int64), glt[1].astype(np.int64), tuple(float(v) for v in np.ravel(gt)), str(crs))

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of the ortho grid."""
        return tuple(int(s) for s in self.glt_x.shape)  # type: ignore[return-value]

    def coords(self) -> dict[str, Any]:
        """1-D ``y``/``x`` pixel-centre coordinates, also as ``latitude``/``longitude`` (the eager path's names)."""
        from hyperplex.geo.io.emit import ortho_coords

        lat, lon = ortho_coords(np.asarray(self.geotransform), self.shape)
        return {"y": lat, "x": lon, "latitude": ("y", lat), "longitude": ("x", lon)}


def _gather_block(block: np.ndarray, rows: np.ndarray, cols: np.ndarray, valid: np.ndarray, fill: Any) -> np.ndarray:
    """Gather ``block[..., rows, cols]`` (0-based into the block) where ``valid``, ``fill`` elsewhere."""
    out = np.full(block.shape[:-2] + valid.shape, fill, dtype=block.dtype)
    out[..., valid] = block[..., rows[valid], cols[valid]]
    return out


def _block(src: Any, grid: OrthoGrid, ys: slice, xs: slice, fill: Any) -> Any:
    """One ortho block as a dask array: the bounding box of its sensor pixels, gathered."""
    import dask.array as da

    gx, gy = grid.glt_x[ys, xs], grid.glt_y[ys, xs]
    valid = glt_valid(gx, gy)
    lead = src.shape[:-2]
    shape = (*lead, *gx.shape)
    if not valid.any():
        return da.full(shape, fill, dtype=src.dtype, chunks=(*src.chunks[:-2], gx.shape[0], gx.shape[1]))
    r0, r1 = int(gy[valid].min()) - 1, int(gy[valid].max())
    c0, c1 = int(gx[valid].min()) - 1, int(gx[valid].max())
    box = src[..., r0:r1, c0:c1].rechunk({src.ndim - 2: -1, src.ndim - 1: -1})
    rows, cols = np.where(valid, gy - 1 - r0, 0), np.where(valid, gx - 1 - c0, 0)
    gather = partial(_gather_block, rows=rows, cols=cols, valid=valid, fill=fill)
    return box.map_blocks(gather, chunks=(*src.chunks[:-2], (gx.shape[0],), (gx.shape[1],)), dtype=src.dtype)


def _as_dask(data: xr.DataArray) -> Any:
    """The DataArray's values as a dask array without reading them (lazily opened files stay lazy)."""
    return (data if data.chunks is not None else data.chunk()).data


def _check(data: xr.DataArray, grid: OrthoGrid) -> None:
    if data.ndim < 2:
        raise InvalidParameterError(f"`data` must have two sensor dimensions (lines, samples); got dims {data.dims}.")
    lines, samples = data.shape[-2:]
    valid = glt_valid(grid.glt_x, grid.glt_y)
    if valid.any() and (grid.glt_y[valid].max() > lines or grid.glt_x[valid].max() > samples):
        raise InvalidParameterError(
            f"GLT points to line {grid.glt_y[valid].max()} / sample {grid.glt_x[valid].max()} but `data` is "
            f"{lines} x {samples} ({data.dims[-2:]}); was it cropped or transposed?"
        )


def orthorectify(data: xr.DataArray, geometry: Any, *, chunks: int = ORTHO_CHUNK, fill: Any = None) -> xr.DataArray:
    """Put a sensor-geometry DataArray onto the granule's map grid, lazily.

    Any result in sensor geometry works: radiance, a filter's enhancement, plume labels. The last
    two dims are the sensor's (lines, samples); leading dims (e.g. ``band``) and their coordinates are
    kept, as are the attributes; 2-D sensor-geometry coordinates (``lat``, ``lon``) are replaced by the
    grid's.

    Args:
        data: ``(..., downtrack, crosstrack)`` DataArray (numpy- or dask-backed, or lazily opened).
        geometry: Where the GLT comes from: :func:`~hyperplex.geo.io.open_emit`'s Dataset, an
            ``EmitGeometry``, the granule's path, or an :class:`OrthoGrid`.
        chunks: Edge of the output blocks (cells); leading dims keep the input's chunks.
        fill: Value of cells without data; NaN for floats, 0 for integers when None.

    Returns:
        A dask-backed ``(..., y, x)`` DataArray with ``y``/``x`` (and ``latitude``/``longitude``) pixel-centre
        coordinates and the CRS and transform written (rioxarray), so ``.rio.to_raster()`` works.

    Raises:
        InvalidParameterError: If the GLT points outside ``data`` or ``geometry`` has no GLT grid.
    """
    import dask.array as da
    import rioxarray  # noqa: F401  (registers the .rio accessor)
    import xarray as xr

    grid = OrthoGrid.of(geometry)
    _check(data, grid)
    if int(chunks) < 1:
        raise InvalidParameterError(f"`chunks` must be a positive block edge in cells; got {chunks}.")
    src = _as_dask(data)
    fill = (np.nan if np.issubdtype(src.dtype, np.floating) else 0) if fill is None else fill
    ny, nx = grid.shape
    step = int(chunks)
    rows = [[_block(src, grid, slice(y, y + step), slice(x, x + step), fill) for x in range(0, nx, step)]
            for y in range(0, ny, step)]  # fmt: skip
    lead = data.dims[:-2]
    gathered = da.concatenate([da.concatenate(row, axis=-1) for row in rows], axis=-2)
    keep = {k: v for k, v in data.coords.items() if set(v.dims) <= set(lead)}
    out = xr.DataArray(gathered, dims=(*lead, "y", "x"), coords={**keep, **grid.coords()},
                       name=data.name, attrs=dict(data.attrs))  # fmt: skip
    return out.rio.write_crs(grid.crs).rio.write_transform(ortho_transform(grid.geotransform))
