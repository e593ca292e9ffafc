"""``open_image``: recognise a microscopy file or store by its content and open it lazily."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hyperplex.bio._tiff import damaged
from hyperplex.bio.formats import BIO_FORMATS  # noqa: F401  (registers OME-TIFF, OME-Zarr and TIFF stacks)
from hyperplex.common.formats import FORMATS
from hyperplex.common.image import MultiscaleImage

__all__ = ["detect_format", "open_image"]

_KIND = "microscopy"


def detect_format(path: str | os.PathLike[str]) -> str:
    """Say which reader fits ``path``: ``"ome-zarr"``, ``"ome-tiff"``, ``"tiff-stack"`` or ``"png-jpeg"``.

    Decided by the registered microscopy formats' sniffers from the content (zarr metadata files,
    the first TIFF IFD), not the extension.

    Raises:
        DataNotFoundError: If the path does not exist.
        FileFormatError: If it is none of the supported formats.
    """
    return FORMATS.require(path, _KIND, noun="microscopy image").name


def open_image(path: str | os.PathLike[str], **kwargs: Any) -> MultiscaleImage:
    """Open an OME-TIFF, OME-Zarr, plain TIFF stack, PNG or JPEG lazily (nothing but metadata is read).

    RGB colour images (interleaved TIFF samples, an OME-Zarr of R, G, B, colour PNG/JPEG) come back as
    three channels ``R, G, B`` marked RGB: :func:`hyperplex.bio.rgb.is_rgb` is True for them.

    Args:
        path: File or store.
        **kwargs: Passed to the format's reader (``read_ome_tiff``, ``read_ome_zarr``, ``read_tiff_stack``),
            e.g. ``select={"Z": 0}``.

    Returns:
        The image with every pyramid level, its channels and pixel size.

    Raises:
        DataNotFoundError: If the path does not exist.
        FileFormatError: If the format is unknown or the file is damaged.
        ChannelMismatchError: If channel metadata disagrees with the pixel data.
    """
    fmt = FORMATS.require(path, _KIND, noun="microscopy image")
    with damaged(Path(path)):  # what tifffile or zarr raise on a damaged file becomes a FileFormatError
        return fmt.open(path, **kwargs)
