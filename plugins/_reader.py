"""npe2 reader for every registered format (OME-TIFF, OME-Zarr, TIFF stacks, EMIT NetCDF, ENVI, GeoTIFF).

``get_reader`` asks the format registry which format claims the path (header bytes only), then opens
it lazily with that format's ``open_image`` (metadata only, no pixels), so a file the reader cannot
handle is refused here, never accepted and then failed. The returned function turns the already-open
:class:`~hyperplex.common.image.MultiscaleImage` into layer-data tuples: the file is opened once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from hyperplex.common.image import MultiscaleImage
from hyperplex.plugins._formats import FORMATS, sniff
from hyperplex.plugins._layers import LayerDataTuple, image_layer_data

__all__ = ["get_reader", "open_stack", "read_path"]

ReaderFunction = Callable[[str | list[str]], list[LayerDataTuple]]


def _single_path(path: str | os.PathLike[str] | list[Any]) -> str | None:
    if isinstance(path, (list, tuple)):
        return str(path[0]) if len(path) == 1 else None
    return os.fspath(path) if isinstance(path, (str, os.PathLike)) else None


def get_reader(path: str | list[str]) -> ReaderFunction | None:
    """Return a reader function for ``path``, or None when the plugin cannot read it. Never raises.

    Args:
        path: One path (or a one-element list) to a file or a Zarr directory.

    Returns:
        A function taking the path and returning layer-data tuples, or None.
    """
    try:
        single = _single_path(path)
        fmt = None if single is None else sniff(single)
        if fmt is None:
            return None
        image = fmt.open_image(single)
    except Exception:  # the reader contract: never raise from get_reader (a claimed file that fails to open)
        return None
    return _Reader(single, _with_domain(image, fmt.kind))


class _Reader:
    """The reader function napari calls: layer data of the image opened in ``get_reader``."""

    def __init__(self, path: str, image: MultiscaleImage):
        self.path, self.image = path, image

    def __call__(self, path: str | list[str]) -> list[LayerDataTuple]:
        single = _single_path(path)
        if single is not None and os.path.abspath(single) != os.path.abspath(self.path):
            return read_path(single)  # called with another path than the one sniffed
        return image_layer_data(self.image)


def _with_domain(image: MultiscaleImage, kind: str) -> MultiscaleImage:
    image.metadata.setdefault("domain", "geo" if kind == "hyperspectral" else "bio")
    return image


def read_path(path: str | list[str], *, kind: str | None = None) -> list[LayerDataTuple]:
    """Open ``path`` and return its layer-data tuples (one layer per channel, or a band-axis cube).

    Args:
        path: File or Zarr directory (or a one-element list).
        kind: Registry name of the format (``"ome-tiff"``, ``"emit"``, ...); sniffed when None.

    Returns:
        Layer-data tuples for napari.

    Raises:
        FileFormatError: If the path is not a supported format.
    """
    return image_layer_data(open_stack(_single_path(path), kind=kind))


def open_stack(path: str | os.PathLike[str], *, kind: str | None = None) -> MultiscaleImage:
    """Open a supported file lazily as the one image container, through the format registry.

    Args:
        path: File or Zarr directory.
        kind: Registry name of the format; sniffed when None.

    Returns:
        The image (levels stay lazy); ``metadata["domain"]`` is ``"geo"`` or ``"bio"``.

    Raises:
        DataNotFoundError: If the path does not exist.
        FileFormatError: If no registered format claims it.
    """
    from hyperplex.common.errors import DataNotFoundError, FileFormatError

    fmt = FORMATS[kind] if kind is not None else sniff(path)
    if fmt is None:
        if not os.path.exists(path):
            raise DataNotFoundError(f"{path}: no such file or directory.")
        names = ", ".join(f.description or f.name for f in FORMATS)
        raise FileFormatError(f"{path}: not a format hyperplex reads ({names}).")
    return _with_domain(fmt.open_image(path), fmt.kind)
