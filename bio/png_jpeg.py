"""PNG and JPEG images (H&E snapshots, bright-field photos): one RGB image, or one grey channel.

The sniffer reads the magic bytes only. The pixels are decoded (by Pillow) when a level is computed,
as one dask chunk: PNG and JPEG have no tiles, so they suit snapshots, not whole slides.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from hyperplex.common.errors import DataNotFoundError, FileFormatError
from hyperplex.common.formats import read_head
from hyperplex.common.image import MultiscaleImage

__all__ = ["is_png_jpeg", "read_png_jpeg"]

_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")
_COLOUR_MODES = ("RGB", "RGBA", "P", "PA", "CMYK", "YCbCr", "LA")
_GREY_MODES = {"L": np.uint8, "1": np.uint8, "I;16": np.uint16, "I;16B": np.uint16, "I": np.int32, "F": np.float32}


def is_png_jpeg(path: str | os.PathLike[str]) -> bool:
    """True for a file that starts with the PNG signature or a JPEG SOI marker. Never raises."""
    head = read_head(path, 8)
    return any(head.startswith(magic) for magic in _MAGIC)


def _open_pil(path: Path) -> Any:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise DataNotFoundError(f"{path}: no such file.")
    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise FileFormatError(f"{path}: not a readable PNG or JPEG ({err}).") from err


def _decode(path: Path, colour: bool) -> np.ndarray:
    """All pixels as ``(C, H, W)``: RGB (alpha and palettes resolved) or one grey channel."""
    with _open_pil(path) as im:
        try:
            data = np.asarray(im.convert("RGB") if colour else im)
        except (OSError, ValueError) as err:  # truncated or corrupt data
            raise FileFormatError(f"{path}: the image data cannot be decoded ({err}).") from err
    return np.moveaxis(data, -1, 0) if colour else data[None]


def read_png_jpeg(path: str | os.PathLike[str]) -> MultiscaleImage:
    """Open a PNG or JPEG lazily (the header now, the pixels on first compute).

    Colour images (RGB, RGBA, palette, CMYK) become one RGB image (``R, G, B``, uint8, alpha dropped,
    marked RGB: :func:`hyperplex.bio.rgb.is_rgb`); grey images one channel. PNG/JPEG resolutions are
    screen dpi, so the pixel size is unknown (None).

    Raises:
        DataNotFoundError: If the file does not exist.
        FileFormatError: If it is not a readable PNG/JPEG or its mode is unsupported.
    """
    import dask
    import dask.array as da

    from hyperplex.bio.rgb import RGB_CHANNELS, mark_rgb
    from hyperplex.common.channels import ChannelSet

    path = Path(path)
    with _open_pil(path) as im:
        mode, (width, height), kind = im.mode, im.size, im.format
    colour = mode in _COLOUR_MODES
    if not colour and mode not in _GREY_MODES:
        raise FileFormatError(f"{path}: image mode {mode!r} is not supported (RGB, palette or grey images are).")
    count, dtype = (3, np.uint8) if colour else (1, _GREY_MODES[mode])
    level = da.from_delayed(dask.delayed(_decode)(path, colour), (count, height, width), dtype=dtype)
    channels = RGB_CHANNELS if colour else ChannelSet.from_names([path.stem])
    meta = {"mode": mode, "codec": kind}
    image = MultiscaleImage([level], channels, None, path, "png-jpeg", meta, units=None, name=path.stem)
    return mark_rgb(image) if colour else image
