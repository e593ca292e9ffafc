"""The format registry: one reader per file format, registered once, found by content.

A :class:`Format` names a file format, says whether it holds a hyperspectral cube or a microscopy
image, and carries a strict ``sniff(path) -> bool`` (header bytes or directory layout only; never
raises) and its reader. ``hyperplex.geo.io`` and ``hyperplex.bio`` register their formats in
:data:`FORMATS` when imported; ``open_cube``, ``open_image``, the CLI and the napari reader all ask
this one registry which reader a path needs. ``hyperplex.common`` itself registers nothing, so it
never imports ``geo`` or ``bio``.

The byte-level helpers (:data:`TIFF_MAGIC`, :data:`HDF5_MAGIC`, :func:`read_head`,
:func:`tiff_header`) are shared by the TIFF-based sniffers of both domains.

Example (adding a reader; ``NPY_MAGIC`` being the first bytes of a ``.npy`` file)::

    FORMATS.register(Format("npy-cube", "hyperspectral", sniff=lambda p: read_head(p, 6) == NPY_MAGIC,
                            open=open_npy_cube, open_image=npy_cube_image))
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hyperplex.common.errors import DataNotFoundError, FileFormatError, InvalidParameterError

__all__ = [
    "FORMATS",
    "HDF5_MAGIC",
    "KINDS",
    "TIFF_MAGIC",
    "Format",
    "FormatRegistry",
    "TiffHeader",
    "read_head",
    "tiff_header",
]

#: First four bytes of classic TIFF and BigTIFF files, little and big endian.
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
#: Signature of HDF5 (and so NetCDF-4) files.
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
#: What a format holds: a hyperspectral cube (``hyperplex.geo``) or a microscopy image (``hyperplex.bio``).
KINDS = ("hyperspectral", "microscopy")

Kind = Literal["hyperspectral", "microscopy"]


@dataclass(frozen=True)
class Format:
    """One file format and its reader.

    Args:
        name: Registry key, e.g. ``"emit"`` or ``"ome-tiff"``.
        kind: ``"hyperspectral"`` or ``"microscopy"``.
        sniff: ``sniff(path) -> bool`` from header bytes or directory layout; strict (claims only files
            its reader opens) and never raises.
        open: The format's own reader, ``open(path, **kwargs)``: an ``xarray.DataArray`` ``(band, y, x)``
            for hyperspectral cubes, a :class:`~hyperplex.common.image.MultiscaleImage` for microscopy.
        open_image: ``open_image(path, **kwargs)`` returning a ``MultiscaleImage`` (what the napari reader
            shows); for microscopy formats the same function as ``open``.
        description: One line for messages and docs.
    """

    name: str
    kind: Kind
    sniff: Callable[[Path], bool]
    open: Callable[..., Any]
    open_image: Callable[..., Any]
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidParameterError(f"Format {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}.")

    def claims(self, path: str | os.PathLike[str]) -> bool:
        """Whether this format's sniffer claims ``path``; False on any error."""
        try:
            return bool(self.sniff(Path(path)))
        except Exception:  # a sniffer must never raise; treat a broken one as "not mine"
            return False


class FormatRegistry:
    """An ordered set of :class:`Format` objects, looked up by name or by sniffing a path."""

    def __init__(self) -> None:
        self._formats: dict[str, Format] = {}

    def register(self, fmt: Format) -> Format:
        """Add ``fmt`` (registering the same object twice is a no-op).

        Raises:
            InvalidParameterError: If another format already has this name.
        """
        known = self._formats.get(fmt.name)
        if known is not None and known is not fmt:
            raise InvalidParameterError(f"A format named {fmt.name!r} is already registered ({known.description}).")
        self._formats[fmt.name] = fmt
        return fmt

    def unregister(self, name: str) -> None:
        """Remove the format ``name`` (no error when absent)."""
        self._formats.pop(name, None)

    def __iter__(self) -> Iterator[Format]:
        return iter(tuple(self._formats.values()))

    def __len__(self) -> int:
        return len(self._formats)

    def __getitem__(self, name: str) -> Format:
        if name not in self._formats:
            raise InvalidParameterError(f"No format named {name!r}; registered: {', '.join(self._formats)}.")
        return self._formats[name]

    def names(self, kind: str | None = None) -> list[str]:
        """Registered format names, optionally of one kind, in registration order."""
        return [f.name for f in self if kind is None or f.kind == kind]

    def claimants(self, path: str | os.PathLike[str], kind: str | None = None) -> list[Format]:
        """Every format (of ``kind``) whose sniffer claims ``path``. Never raises."""
        return [f for f in self if (kind is None or f.kind == kind) and f.claims(path)]

    def sniff(self, path: str | os.PathLike[str], kind: str | None = None) -> Format | None:
        """The format (of ``kind``) that claims ``path``, or None. Never raises."""
        return next((f for f in self if (kind is None or f.kind == kind) and f.claims(path)), None)

    def require(self, path: str | os.PathLike[str], kind: str, *, noun: str | None = None) -> Format:
        """The ``kind`` format that claims ``path``, with a clear error when there is none.

        Args:
            path: File or directory.
            kind: ``"hyperspectral"`` or ``"microscopy"``.
            noun: What the caller expected, for the message (default ``"<kind> file"``).

        Raises:
            DataNotFoundError: If the path does not exist.
            FileFormatError: If no format of ``kind`` claims it; the message lists the formats of ``kind``
                and says when one of the other kind does (e.g. an OME-TIFF passed to ``open_cube``).
        """
        p = Path(path)
        if not p.exists():
            raise DataNotFoundError(f"{p}: no such file or directory.")
        fmt = self.sniff(p, kind)
        if fmt is not None:
            return fmt
        other = self.sniff(p)
        expected = ", ".join(f.description or f.name for f in self if f.kind == kind)
        hint = f" It looks like {other.description or other.name} ({other.kind} data)." if other is not None else ""
        raise FileFormatError(
            f"{p}: unknown format, not a recognised {noun or kind + ' file'}; expected {expected}.{hint}"
        )


#: The registry every reader goes through (filled by ``hyperplex.geo.io`` and ``hyperplex.bio`` on import).
FORMATS = FormatRegistry()


def read_head(path: str | os.PathLike[str], size: int = 8) -> bytes:
    """The first ``size`` bytes of a regular file; ``b""`` for directories, missing or unreadable paths."""
    try:
        with open(path, "rb") as fh:
            return fh.read(size)
    except OSError:
        return b""


@dataclass(frozen=True)
class TiffHeader:
    """What the first IFD of a TIFF says, parsed from its bytes (no image library).

    Attributes:
        bigtiff: True for BigTIFF.
        tags: Tag codes present in the first IFD.
        description_end: The last bytes (up to 64) of the first ImageDescription, decoded, stripped.
    """

    bigtiff: bool
    tags: frozenset[int]
    description_end: str

    @property
    def is_gdal(self) -> bool:
        """True when the first IFD carries GeoTIFF georeferencing or GDAL's own metadata tag (a GDAL raster)."""
        return bool(self.tags & _GDAL_TAGS)

    @property
    def is_ome(self) -> bool:
        """True when the first ImageDescription is OME-XML (ends with ``OME>``, as tifffile decides)."""
        return self.description_end.endswith("OME>")


_DESCRIPTION = 270
#: ModelPixelScale, ModelTiepoint, ModelTransformation, GeoKeyDirectory, GDAL_METADATA (per-band tags).
_GDAL_TAGS = frozenset({33550, 33922, 34264, 34735, 42112})
_ENTRY = {False: ("H", "HHI", 4, 12), True: ("Q", "HHQ", 8, 20)}  # IFD count, entry head, value bytes, entry size


def _first_ifd(fh: Any, order: str, big: bool) -> tuple[frozenset[int], str]:
    count_fmt, head_fmt, inline, size = _ENTRY[big]
    fh.seek(8 if big else 4)
    (offset,) = struct.unpack(order + ("Q" if big else "I"), fh.read(8 if big else 4))
    fh.seek(offset)
    (count,) = struct.unpack(order + count_fmt, fh.read(struct.calcsize(count_fmt)))
    if not 0 < count < 4096:
        raise ValueError("implausible IFD")
    raw = fh.read(count * size)
    tags, description = set(), ""
    for i in range(count):
        entry = raw[i * size : (i + 1) * size]
        tag, _, n = struct.unpack(order + head_fmt, entry[: size - inline])
        tags.add(tag)
        if tag == _DESCRIPTION and n > 0:
            value = entry[size - inline :]
            if n > inline:
                (pos,) = struct.unpack(order + ("Q" if big else "I"), value)
                start = max(0, n - 64)
                fh.seek(pos + start)
                value = fh.read(n - start)
            description = value[:n].rstrip(b"\x00").decode("latin-1").strip()
    return frozenset(tags), description


def tiff_header(path: str | os.PathLike[str]) -> TiffHeader | None:
    """Parse the first IFD of a TIFF/BigTIFF file; None when ``path`` is not a readable TIFF. Never raises."""
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
            if magic not in TIFF_MAGIC:
                return None
            order, big = ("<" if magic[:2] == b"II" else ">"), magic[2:] in (b"+\x00", b"\x00+")
            tags, description = _first_ifd(fh, order, big)
    except (OSError, ValueError, struct.error):
        return None
    if not {256, 257} <= tags:  # ImageWidth and ImageLength: a TIFF without them has no image
        return None
    return TiffHeader(big, tags, description)
