"""The no-data value of hyperspectral radiance: one constant for the readers, the filters and the synthetic scenes."""

from __future__ import annotations

__all__ = ["FILL_VALUE"]

#: Fill value of EMIT L1B radiance and L2A reflectance, of ENVI cubes without ``data ignore value``, and mag1c's NODATA.
FILL_VALUE = -9999.0
