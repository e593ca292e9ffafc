"""Plume polygons in lon/lat (EPSG:4326) from a label raster on any grid."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hyperplex.geo.image_ops import bilinear

__all__ = ["label_polygons", "lonlat_mapper"]


def lonlat_mapper(lat: np.ndarray, lon: np.ndarray) -> Callable[[np.ndarray, np.ndarray], tuple[Any, Any]]:
    """Map pixel-corner coordinates (x=col, y=row) of a sensor-geometry grid to lon/lat by interpolation."""

    def mapper(x: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
        rows, cols = np.asarray(y, float).ravel() - 0.5, np.asarray(x, float).ravel() - 0.5
        lon_v, lat_v = bilinear(lon, rows, cols), bilinear(lat, rows, cols)
        return lon_v.reshape(np.shape(x)), lat_v.reshape(np.shape(y))

    return mapper


def label_polygons(
    labels: np.ndarray,
    *,
    transform: Any = None,
    crs: Any = None,
    mapper: Callable[[np.ndarray, np.ndarray], tuple[Any, Any]] | None = None,
) -> dict[int, Any]:
    """One (multi)polygon per label id, in EPSG:4326.

    Args:
        labels: Integer label raster, 0 = background.
        transform: Affine of the grid (georeferenced grids).
        crs: CRS of the grid; reprojected to EPSG:4326 when it is another CRS.
        mapper: Instead of transform/crs: maps pixel (x, y) to (lon, lat) (sensor geometry).

    Returns:
        ``{id: shapely geometry}``.
    """
    import rasterio.features
    import shapely.ops
    from affine import Affine
    from rasterio.crs import CRS
    from rasterio.warp import transform_geom
    from shapely.geometry import shape

    grid = transform if mapper is None else Affine.identity()
    pieces: dict[int, list[Any]] = {}
    data = labels.astype(np.int32)
    for geom, value in rasterio.features.shapes(data, mask=data > 0, transform=grid, connectivity=8):
        pieces.setdefault(int(value), []).append(shape(geom))
    out = {}
    geographic = crs is None or CRS.from_user_input(crs).to_epsg() == 4326
    for pid, parts in pieces.items():
        geom = shapely.ops.unary_union(parts)
        if mapper is not None:
            geom = shapely.ops.transform(mapper, geom)
        elif not geographic:
            geom = shape(transform_geom(crs, "EPSG:4326", geom.__geo_interface__))
        out[pid] = geom
    return out
