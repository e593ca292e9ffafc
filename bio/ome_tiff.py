"""OME-TIFF reader: every pyramid level (SubIFDs or multi-resolution series), lazily, with channel metadata."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hyperplex.bio._tiff import open_tiff, series_levels
from hyperplex.bio.axes import to_cyx
from hyperplex.bio.rgb import RGB_CHANNELS, looks_rgb, mark_rgb
from hyperplex.bio.units import to_micrometers
from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import FileFormatError, InvalidParameterError
from hyperplex.common.image import MultiscaleImage

__all__ = ["channels_from_ome_xml", "ome_channel_metadata", "read_ome_tiff"]


def read_ome_tiff(
    path: str | os.PathLike[str], *, series: int = 0, select: Mapping[str, int] | None = None
) -> MultiscaleImage:
    """Open an OME-TIFF lazily: headers and OME-XML are parsed, no pixel is read.

    Levels are dask arrays over tifffile's zarr store, one chunk per TIFF tile. Interleaved RGB
    (``SamplesPerPixel="3"``, e.g. H&E) comes back as 3 channels ``R, G, B`` marked RGB
    (:func:`hyperplex.bio.rgb.is_rgb`), as does a planar 8-bit image whose channels are named R, G, B.

    Args:
        path: The ``.ome.tif(f)`` file.
        series: Which OME image (series) to open.
        select: Single planes along extra axes, e.g. ``{"Z": 0}`` for a z-stack.

    Returns:
        The image; ``channels`` from the OME ``Channel`` elements, ``pixel_size_um`` from ``PhysicalSizeY/X``.

    Raises:
        DataNotFoundError: If the file does not exist.
        FileFormatError: If the file is not TIFF, carries no OME-XML, or has an unsupported axis layout.
        ChannelMismatchError: If the OME-XML names a different number of channels than the pixels hold.
    """
    path = Path(path)
    tif = open_tiff(path)
    try:
        if not tif.is_ome or not tif.ome_metadata:
            raise FileFormatError(f"{path}: no OME-XML metadata; open plain TIFFs with read_tiff_stack.")
        levels, axes = series_levels(tif, series, path)
        pixels = _pixels_element(tif.ome_metadata, series, path)
        cyx, chan_axes = zip(*(to_cyx(lvl, axes, source=str(path), select=select) for lvl in levels))
        channels = _channels(pixels, cyx[0].shape[0], "S" in chan_axes[0])
        image = MultiscaleImage(list(cyx), channels, _pixel_size(pixels, path), path, "ome-tiff")
    except BaseException:
        tif.close()
        raise
    image.metadata.update(axes=axes, series=series, n_series=len(tif.series))
    if ("S" in chan_axes[0] and image.count == 3) or looks_rgb(image.channels, image.dtype):
        mark_rgb(image)
    image._closers.append(tif.close)
    return image


def _pixels_element(xml: str, series: int, path: Path) -> ET.Element | None:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as err:
        raise FileFormatError(f"{path}: OME-XML is not well-formed ({err}).") from err
    images = [el for el in root if el.tag.endswith("}Image") or el.tag == "Image"]
    if series >= len(images):
        return None
    return next((el for el in images[series] if el.tag.endswith("Pixels")), None)


def _channels(pixels: ET.Element | None, count: int, interleaved: bool) -> ChannelSet:
    if pixels is None:
        return ChannelSet.default(count)
    declared = [el for el in pixels if el.tag.endswith("Channel")]
    if interleaved and count == 3 and len(declared) <= 1:
        return RGB_CHANNELS
    if not declared:
        return ChannelSet.default(count)
    return channels_from_ome_xml(ET.tostring(pixels, encoding="unicode"))


def _pixel_size(pixels: ET.Element | None, path: Path) -> tuple[float, float] | None:
    if pixels is None or pixels.get("PhysicalSizeX") is None or pixels.get("PhysicalSizeY") is None:
        return None
    # OME's default unit for PhysicalSize* is µm
    sy = to_micrometers(float(pixels.get("PhysicalSizeY")), pixels.get("PhysicalSizeYUnit"), source=str(path))
    sx = to_micrometers(float(pixels.get("PhysicalSizeX")), pixels.get("PhysicalSizeXUnit"), source=str(path))
    return (sy, sx)


def ome_channel_metadata(channels: ChannelSet) -> dict[str, Any]:
    """The ``Channel`` entry of tifffile's OME metadata (``imwrite(..., metadata=...)``) for ``channels``."""
    channel: dict[str, Any] = {"Name": list(channels.names)}
    if channels.colors is not None:
        channel["Color"] = [_rgba_int(c) for c in channels.colors]
    if channels.wavelengths is not None:
        channel["EmissionWavelength"] = [float(w) for w in channels.wavelengths]
        channel["EmissionWavelengthUnit"] = ["nm"] * len(channels)
    return {"Channel": channel}


def channels_from_ome_xml(xml: str, count: int | None = None) -> ChannelSet:
    """Channel names (and emission wavelengths, colours) of the first image in OME-XML.

    Inverse of :func:`ome_channel_metadata` once tifffile has written it.

    Raises:
        ChannelMismatchError: If ``count`` is given and differs from the number of ``Channel`` elements.
    """
    root = ET.fromstring(xml)
    pixels = next((el for el in root.iter() if el.tag.endswith("Pixels")), None)
    chans = [] if pixels is None else [el for el in pixels if el.tag.endswith("Channel")]
    if not chans:
        return ChannelSet.default(count or 0)
    names = tuple(c.get("Name") or f"c{i}" for i, c in enumerate(chans))
    colors = None
    if all(c.get("Color") is not None for c in chans):
        colors = tuple(_rgba_hex(int(c.get("Color"))) for c in chans)
    wl = [c.get("EmissionWavelength") for c in chans]
    result = ChannelSet(names, [float(w) for w in wl] if all(w is not None for w in wl) else None, colors=colors)
    return result if count is None else result.checked(count, "OME-XML")


def _rgba_int(color: str) -> int:
    """'#RRGGBB' -> OME's signed 32-bit RGBA integer."""
    hexstr = color.lstrip("#")
    if not re.fullmatch(r"[0-9A-Fa-f]{6}([0-9A-Fa-f]{2})?", hexstr):
        raise InvalidParameterError(f"Colour {color!r} is not '#RRGGBB'.")
    value = int(hexstr[:6] + (hexstr[6:] or "FF"), 16)
    return value - (1 << 32) if value >= (1 << 31) else value


def _rgba_hex(value: int) -> str:
    return "#" + f"{value & 0xFFFFFFFF:08X}"[:6]
