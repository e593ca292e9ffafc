"""Synthetic EMIT viewing geometry: per-pixel lon/lat/elevation and a (rotated) GLT."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["EMIT_RESOLUTION_DEG", "SceneGeometry", "make_geometry"]

#: EMIT's ortho grid spacing in degrees (about 60 m).
EMIT_RESOLUTION_DEG = 0.000542232520256367


@dataclass(frozen=True)
class SceneGeometry:
    """Where each sensor pixel lands, and the GLT that maps ortho cells back to sensor pixels.

    Attributes:
        lon: Longitude of each sensor pixel centre, (lines, samples) float64.
        lat: Latitude of each sensor pixel centre, (lines, samples) float64.
        elev: Surface elevation in m, (lines, samples) float64.
        glt_x: 1-based sensor sample per ortho cell, 0 = no data, (ortho_y, ortho_x) int32.
        glt_y: 1-based sensor line per ortho cell, 0 = no data, (ortho_y, ortho_x) int32.
        geotransform: GDAL geotransform of the ortho grid (EPSG:4326).
    """

    lon: np.ndarray
    lat: np.ndarray
    elev: np.ndarray
    glt_x: np.ndarray
    glt_y: np.ndarray
    geotransform: tuple[float, float, float, float, float, float]


def _ortho_positions(lines: int, samples: int, theta: float) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Continuous ortho (row, col) of each sensor pixel, shifted to a 1-cell margin."""
    ll, ss = np.meshgrid(np.arange(lines, dtype=np.float64), np.arange(samples, dtype=np.float64), indexing="ij")
    col = ss * np.cos(theta) - ll * np.sin(theta)
    row = ss * np.sin(theta) + ll * np.cos(theta)
    col -= col.min() - 1.0
    row -= row.min() - 1.0
    return row, col, int(np.ceil(row.max())) + 2, int(np.ceil(col.max())) + 2


def _glt(row0: float, col0: float, shape: tuple[int, int], dims: tuple[int, int], theta: float) -> np.ndarray:
    """Nearest-neighbour inverse mapping from ortho cells to 1-based sensor (sample, line)."""
    ii, jj = np.meshgrid(np.arange(shape[0], dtype=np.float64), np.arange(shape[1], dtype=np.float64), indexing="ij")
    dj, di = jj - col0, ii - row0
    sample = np.rint(dj * np.cos(theta) + di * np.sin(theta)).astype(np.int64)
    line = np.rint(-dj * np.sin(theta) + di * np.cos(theta)).astype(np.int64)
    valid = (line >= 0) & (line < dims[0]) & (sample >= 0) & (sample < dims[1])
    glt = np.zeros((2, *shape), dtype=np.int32)
    glt[0][valid] = sample[valid] + 1
    glt[1][valid] = line[valid] + 1
    return glt


def make_geometry(
    lines: int,
    samples: int,
    *,
    rotation_deg: float,
    origin_lonlat: tuple[float, float],
    elevation: np.ndarray,
) -> SceneGeometry:
    """Lay the sensor grid on the ground at ``rotation_deg`` and build the GLT.

    Args:
        lines: Downtrack size.
        samples: Crosstrack size.
        rotation_deg: Angle between the downtrack direction and north (0 gives an identity GLT).
        origin_lonlat: Upper-left corner of the ortho grid.
        elevation: Surface elevation per sensor pixel in m.

    Returns:
        The geometry.
    """
    theta = np.deg2rad(rotation_deg)
    row, col, ny, nx = _ortho_positions(lines, samples, theta)
    res = EMIT_RESOLUTION_DEG
    gt = (float(origin_lonlat[0]), res, 0.0, float(origin_lonlat[1]), 0.0, -res)
    lon = gt[0] + (col + 0.5) * gt[1]
    lat = gt[3] + (row + 0.5) * gt[5]
    glt = _glt(row[0, 0], col[0, 0], (ny, nx), (lines, samples), theta)
    return SceneGeometry(lon, lat, elevation.astype(np.float64), glt[0], glt[1], gt)
