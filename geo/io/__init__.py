"""Readers (and writers) for hyperspectral scenes: EMIT NetCDF, ENVI, multi-band GeoTIFF.

Importing this package registers the three formats in :data:`hyperplex.common.formats.FORMATS`.
"""

from hyperplex.geo.io.cube import open_cube, sniff_cube
from hyperplex.geo.io.emit import (
    EmitGeometry,
    EmitReader,
    emit_channels,
    is_emit,
    open_emit,
    read_emit_block,
    read_emit_geometry,
)
from hyperplex.geo.io.envi import channels_from_envi_header, envi_header_fields, is_envi, open_envi
from hyperplex.geo.io.formats import EMIT, ENVI, GEO_FORMATS, GEOTIFF, cube_image
from hyperplex.geo.io.geotiff import is_geotiff, open_geotiff, write_geotiff_cube

__all__ = [
    "EMIT",
    "ENVI",
    "GEOTIFF",
    "GEO_FORMATS",
    "EmitGeometry",
    "EmitReader",
    "channels_from_envi_header",
    "cube_image",
    "emit_channels",
    "envi_header_fields",
    "is_emit",
    "is_envi",
    "is_geotiff",
    "open_cube",
    "open_emit",
    "open_envi",
    "open_geotiff",
    "read_emit_block",
    "read_emit_geometry",
    "sniff_cube",
    "write_geotiff_cube",
]
