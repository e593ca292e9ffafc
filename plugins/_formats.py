"""The napari reader's view of the format registry: every format of ``hyperplex.geo.io`` and ``hyperplex.bio``.

Importing this module imports both subpackages, which registers their formats in
:data:`hyperplex.common.formats.FORMATS`; the reader loops over that one registry, exactly as
``open_cube`` and ``open_image`` do. Qt-free.

One difference for napari: an EMIT granule opens as :func:`~hyperplex.geo.io.emit.emit_cube`, in blocks
of :data:`EMIT_BAND_CHUNK` bands x 64 lines, so that showing a band plane (and the reader's contrast
preview) reads a few small blocks rather than the file's whole chunks: a full 1280 x 1242 x 285 scene
opens in well under 1 GB.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import hyperplex.bio
import hyperplex.geo.io  # noqa: F401  (registers EMIT, ENVI, GeoTIFF)
from hyperplex.common.formats import FORMATS, Format
from hyperplex.common.image import MultiscaleImage

__all__ = ["EMIT_BAND_CHUNK", "FORMATS", "open_emit_image", "sniff", "sniff_format"]

#: Bands per block of an EMIT cube in napari (a band plane reads 8 bands per 64 lines).
EMIT_BAND_CHUNK = 8


def open_emit_image(path: str | os.PathLike[str], **_: object) -> MultiscaleImage:
    """An EMIT granule as the one image container, read in small band x line blocks (see the module note)."""
    from hyperplex.geo.io.emit import emit_cube
    from hyperplex.geo.io.formats import cube_image

    image = cube_image(emit_cube(path, band_chunk=EMIT_BAND_CHUNK), "emit")
    image.path = Path(path)
    return image


def _for_napari(fmt: Format) -> Format:
    return dataclasses.replace(fmt, open_image=open_emit_image) if fmt.name == "emit" else fmt


def sniff(path: str | os.PathLike[str]) -> Format | None:
    """The registered format that claims ``path`` (header bytes or directory layout), or None. Never raises."""
    try:
        fmt = FORMATS.sniff(path)
    except Exception:  # e.g. an odd argument type: sniffing must never raise
        return None
    return None if fmt is None else _for_napari(fmt)


def sniff_format(path: str | os.PathLike[str]) -> str | None:
    """Name of the registered format that claims ``path`` (``"ome-tiff"``, ``"geotiff"``, ...), or None."""
    fmt = sniff(path)
    return None if fmt is None else fmt.name
