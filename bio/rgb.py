"""RGB images (H&E, bright field): how the readers recognise them and mark them.

A :class:`~hyperplex.common.image.MultiscaleImage` is RGB when ``metadata["rgb"]`` is True: its three
channels are the red, green and blue samples of one colour image (not three markers), so napari shows
it as one RGB layer and the H&E models take it. The readers mark an image RGB when the file says so:
TIFF samples per pixel (``S`` axis, photometric RGB; OME-TIFF ``SamplesPerPixel="3"``), an OME-Zarr
whose three uint8 channels are red, green and blue, and PNG/JPEG colour images.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hyperplex.common.channels import ChannelSet
from hyperplex.common.image import MultiscaleImage

__all__ = ["RGB_CHANNELS", "RGB_KEY", "is_rgb", "looks_rgb", "mark_rgb"]

#: Channels of an RGB image.
RGB_CHANNELS = ChannelSet.from_names(("R", "G", "B"), colors=("#FF0000", "#00FF00", "#0000FF"))
#: Key in ``MultiscaleImage.metadata`` that marks an RGB image.
RGB_KEY = "rgb"

_NAMES = (("r", "g", "b"), ("red", "green", "blue"))


def looks_rgb(channels: ChannelSet, dtype: Any) -> bool:
    """True for three 8-bit channels named R, G, B (or Red, Green, Blue), in that order.

    Used where a format has no samples-per-pixel notion (OME-Zarr): three markers are never taken for RGB
    unless their names say red, green, blue.
    """
    if len(channels) != 3 or np.dtype(dtype) != np.uint8:
        return False
    return tuple(n.strip().lower() for n in channels.names) in _NAMES


def mark_rgb(image: MultiscaleImage, rgb: bool = True) -> MultiscaleImage:
    """Set (or clear) the RGB mark of ``image`` in place and return it.

    Raises:
        InvalidParameterError: If ``image`` does not have exactly three channels.
    """
    from hyperplex.common.errors import InvalidParameterError

    if rgb and image.count != 3:
        raise InvalidParameterError(f"{image.path or image.name}: an RGB image needs 3 channels; got {image.count}.")
    image.metadata[RGB_KEY] = bool(rgb)
    return image


def is_rgb(image: MultiscaleImage) -> bool:
    """True when ``image`` is one RGB colour image (see the module docstring)."""
    return bool(image.metadata.get(RGB_KEY)) and image.count == 3
