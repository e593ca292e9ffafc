"""npe2 writers: selected image layers -> one multichannel OME-TIFF or OME-Zarr, with channel names.

Each selected 2-D layer becomes one channel named after the layer; a single layer holding a whole
stack on a band axis keeps its own channel set. Wavelengths travel along when every layer has one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from hyperplex.common.arrays import materialize
from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import ChannelMismatchError, InvalidParameterError
from hyperplex.plugins._layers import META_KEY

__all__ = ["layers_to_array", "write_ome_tiff", "write_ome_zarr"]


def _level0(data: Any, meta: dict[str, Any]) -> Any:
    return data[0] if meta.get("multiscale") or isinstance(data, list) else data


def _own_channel(meta: dict[str, Any], fallback_name: str) -> tuple[str, float | None]:
    info = meta.get("metadata", {}).get(META_KEY, {})
    wavelengths = info.get("channels", {}).get("wavelengths")
    index = info.get("index")
    wavelength = None if wavelengths is None or index is None else float(wavelengths[index])
    return meta.get("name") or fallback_name, wavelength


def _single_stack(data: Any, meta: dict[str, Any]) -> tuple[Any, ChannelSet]:
    info = meta.get("metadata", {}).get(META_KEY, {})
    array = _level0(data, meta)
    if "channels" in info and info.get("index") is None:
        return array, ChannelSet.from_dict(info["channels"])
    return array, ChannelSet.default(array.shape[0])


_TO_UM = {"micrometer": 1.0, "µm": 1.0, "um": 1.0, "micron": 1.0, "nanometer": 1e-3, "nm": 1e-3,
          "millimeter": 1e3, "mm": 1e3, "meter": 1e6, "m": 1e6, "pixel": 1.0, "px": 1.0}  # fmt: skip


def _pixel_size(meta: dict[str, Any]) -> tuple[float, float] | None:
    """Pixel size ``(dy, dx)`` in µm from a layer's scale and units (unitless scales count as µm)."""
    scale = meta.get("scale")
    if scale is None:
        return None
    dy, dx = (float(s) for s in list(scale)[-2:])
    units = meta.get("units") or ("pixel", "pixel")
    unit = str(list(units)[-1]).strip().lower()
    if unit not in _TO_UM or ((dy, dx) == (1.0, 1.0) and unit in ("pixel", "px")):
        return None
    return dy * _TO_UM[unit], dx * _TO_UM[unit]


def layers_to_array(layer_data: Sequence[tuple[Any, dict[str, Any], str]]) -> tuple[np.ndarray, ChannelSet, Any]:
    """Stack napari layer data into ``(C, H, W)`` with a channel set and pixel size.

    Args:
        layer_data: ``(data, meta, layer_type)`` tuples as napari passes them to writers.

    Returns:
        ``(array, channels, pixel_size)``; ``pixel_size`` is ``(dy, dx)`` in µm, or None.

    Raises:
        InvalidParameterError: If there are no image layers or they are RGB.
        ChannelMismatchError: If 2-D layers differ in shape.
    """
    images = [(d, m) for d, m, kind in layer_data if kind == "image"]
    if not images:
        raise InvalidParameterError("Select at least one image layer to save.")
    if any(m.get("rgb") for _, m in images):
        raise InvalidParameterError("RGB layers cannot be saved as channels; split them first.")
    first = _level0(*images[0])
    if len(images) == 1 and first.ndim == 3:
        array, channels = _single_stack(*images[0])
        return materialize(array), channels, _pixel_size(images[0][1])
    planes = [_level0(d, m) for d, m in images]
    shapes = {tuple(p.shape) for p in planes}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise ChannelMismatchError(f"Selected layers must be 2-D and of one shape to stack as channels; got {shapes}.")
    named = [_own_channel(m, f"c{i}") for i, (_, m) in enumerate(images)]
    names = [n for n, _ in named]
    wavelengths = [w for _, w in named]
    channels = ChannelSet(names, wavelengths if all(w is not None for w in wavelengths) else None)
    array = np.stack([materialize(p) for p in planes])
    return array, channels, _pixel_size(images[0][1])


def write_ome_tiff(path: str, layer_data: list[tuple[Any, dict[str, Any], str]]) -> list[str]:
    """Write the selected image layers as one multichannel, tiled, pyramidal OME-TIFF.

    Args:
        path: Destination (``.ome.tif``).
        layer_data: Layer-data tuples from napari.

    Returns:
        The written path.
    """
    from hyperplex.bio import write_ome_tiff as bio_write_ome_tiff

    array, channels, pixel_size = layers_to_array(layer_data)
    bio_write_ome_tiff(path, array, channels, pixel_size_um=pixel_size)
    return [os.fspath(path)]


def write_ome_zarr(path: str, layer_data: list[tuple[Any, dict[str, Any], str]]) -> list[str]:
    """Write the selected image layers as one multichannel, multiscale OME-Zarr (NGFF 0.5).

    Args:
        path: Destination directory (``.ome.zarr``).
        layer_data: Layer-data tuples from napari.

    Returns:
        The written path.
    """
    from hyperplex.bio import write_ome_zarr as bio_write_ome_zarr

    array, channels, pixel_size = layers_to_array(layer_data)
    bio_write_ome_zarr(path, array, channels, pixel_size_um=pixel_size)
    return [os.fspath(path)]
