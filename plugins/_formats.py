"""The napari reader's view of the format registry: every format of ``hyperplex.geo.io`` and ``hyperplex.bio``.

Importing this module imports both subpackages, which registers their formats in
:data:`hyperplex.common.formats.FORMATS`; the reader loops over that one registry, exactly as
``open_cube`` and ``open_image`` do. Qt-free.
"""

from __future__ import annotations

import os

import hyperplex.bio
import hyperplex.geo.io  # noqa: F401  (registers EMIT, ENVI, GeoTIFF)
from hyperplex.common.formats import FORMATS, Format

__all__ = ["FORMATS", "sniff", "sniff_format"]


def sniff(path: str | os.PathLike[str]) -> Format | None:
    """The registered format that claims ``path`` (header bytes or directory layout), or None. Never raises."""
    try:
        return FORMATS.sniff(path)
    except Exception:  # e.g. an odd argument type: sniffing must never raise
        return None


def sniff_format(path: str | os.PathLike[str]) -> str | None:
    """Name of the registered format that claims ``path`` (``"ome-tiff"``, ``"geotiff"``, ...), or None."""
    fmt = sniff(path)
    return None if fmt is None else fmt.name
