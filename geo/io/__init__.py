"""Readers (and writers) for hyperspectral scenes: EMIT NetCDF, ENVI, multi-band GeoTIFF."""

from hyperplex.geo.io.cube import open_cube, sniff_cube
from hyperplex.geo.io.emit import emit_channels, is_emit, open_emit
from hyperplex.geo.io.envi import open_envi
from hyperplex.geo.io.geotiff import open_geotiff, write_geotiff_cube

__all__ = [
    "emit_channels",
    "is_emit",
    "open_cube",
    "open_emit",
    "open_envi",
    "open_geotiff",
    "sniff_cube",
    "write_geotiff_cube",
]
