"""Turn a :class:`~hyperplex.common.image.MultiscaleImage` into napari layer-data tuples. Qt-free.

Every image layer the plugin creates carries ``metadata["hyperplex"]``: the full channel set of the
stack it belongs to, its own channel index (or None when one layer holds all channels on a band
axis), a stack id shared by sibling layers, and the source path. The widgets find spectra, channel
names and wavelengths there.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from hyperplex.bio.rgb import is_rgb
from hyperplex.common.arrays import materialize
from hyperplex.common.channels import PALETTE, ChannelSet
from hyperplex.common.image import MultiscaleImage

__all__ = [
    "MAX_CHANNEL_LAYERS",
    "META_KEY",
    "auto_contrast",
    "channel_colors",
    "image_layer_data",
    "rgb_layer_data",
]

#: Above this many channels a stack opens as one layer with a band slider instead of one layer per channel.
MAX_CHANNEL_LAYERS = 32
#: Key of the plugin's entry in ``layer.metadata``.
META_KEY = "hyperplex"

LayerDataTuple = tuple[Any, dict[str, Any], str]


def channel_colors(channels: ChannelSet) -> list[str]:
    """Display colours per channel: the set's own colours, else a wavelength hue, else a fixed palette."""
    if channels.colors is not None:
        return ["#" + c.lstrip("#").lower()[:6] for c in channels.colors]
    if channels.is_spectral and len(channels) <= MAX_CHANNEL_LAYERS:
        return [wavelength_color(w) for w in channels.wavelengths]
    return [PALETTE[i % len(PALETTE)].lower() for i in range(len(channels))]


def wavelength_color(nm: float) -> str:
    """An ``#rrggbb`` colour for a wavelength: spectral hue in the visible, magenta/red beyond."""
    if nm < 450:
        return "#8000ff"
    if nm > 700:
        return "#ff00ff" if nm > 1000 else "#ff0000"
    hue = (1.0 - (nm - 450.0) / 250.0) * 0.75  # 450 nm blue-violet -> 700 nm red
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(hue, 1.0, 1.0)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def auto_contrast(data: Any, percentiles: tuple[float, float] = (0.5, 99.5)) -> tuple[float, float]:
    """Contrast limits from percentiles of the finite values of ``data`` (read into memory).

    Args:
        data: A small array (a low pyramid level or a subsample).
        percentiles: Lower and upper percentile.

    Returns:
        ``(low, high)`` with ``high > low``; ``(0, 1)`` when nothing is finite.
    """
    values = materialize(data).astype(np.float64, copy=False)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(values, percentiles))
    if hi <= lo:
        hi = lo + (abs(lo) * 1e-3 or 1.0)
    return lo, hi


def _preview(levels: Sequence[Any], max_pixels: int = 512 * 512, max_channels: int | None = None) -> Any:
    """The coarsest level, strided down to about ``max_pixels`` per channel (and ``max_channels`` channels)."""
    level = levels[-1]
    h, w = level.shape[-2:]
    step = max(1, int(np.ceil(np.sqrt(h * w / max_pixels))))
    if max_channels is not None and level.ndim == 3 and level.shape[0] > max_channels:
        level = level[np.linspace(0, level.shape[0] - 1, max_channels).round().astype(int)]
    return level[..., ::step, ::step]


def _stack_meta(stack: MultiscaleImage, stack_id: str, index: int | None) -> dict[str, Any]:
    meta = {
        "stack": stack_id,
        "index": index,
        "channels": stack.channels.to_dict(),
        "source": None if stack.path is None else str(stack.path),
        "format": stack.format,
        "pixel_size": None if stack.pixel_size is None else list(stack.pixel_size),
        "units": stack.units if stack.pixel_size is not None else None,
    }
    meta.update(stack.metadata)
    return {META_KEY: meta}


def _spatial_kwargs(stack: MultiscaleImage) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if stack.pixel_size is not None:
        kwargs["scale"] = tuple(float(s) for s in stack.pixel_size)
    if stack.units and stack.pixel_size is not None:
        kwargs["units"] = (stack.units, stack.units)
    return kwargs


def _channels_last(level: Any) -> Any:
    """A ``(3, Y, X)`` level as a lazy ``(Y, X, 3)`` view (napari's RGB layout)."""
    if isinstance(level, np.ndarray):
        return np.moveaxis(level, 0, -1)
    import dask.array as da

    return (level if isinstance(level, da.Array) else da.asarray(level)).transpose(1, 2, 0)


def rgb_layer_data(stack: MultiscaleImage, stack_id: str | None = None) -> LayerDataTuple:
    """One RGB layer (``rgb=True``, levels ``(Y, X, 3)``) for an image marked RGB (e.g. H&E).

    Args:
        stack: An RGB image (:func:`hyperplex.bio.rgb.is_rgb`).
        stack_id: Stack id in the layer metadata (new when None).
    """
    levels = [_channels_last(lvl) for lvl in stack.levels]
    multiscale = len(levels) > 1
    kwargs: dict[str, Any] = {
        "name": stack.name,
        "rgb": True,
        "multiscale": multiscale,
        "metadata": _stack_meta(stack, stack_id or uuid.uuid4().hex[:12], None),
        **_spatial_kwargs(stack),
    }
    if np.issubdtype(np.dtype(stack.dtype), np.integer):
        kwargs["contrast_limits"] = (0, int(np.iinfo(stack.dtype).max))
    return (levels if multiscale else levels[0], kwargs, "image")


def image_layer_data(stack: MultiscaleImage, *, max_channel_layers: int = MAX_CHANNEL_LAYERS) -> list[LayerDataTuple]:
    """Layer-data tuples for an image: one layer per channel, one band-axis layer, or one RGB layer.

    Many channels (over ``max_channel_layers``) give a band-axis layer; an image marked RGB
    (:func:`hyperplex.bio.rgb.is_rgb`) gives one RGB layer (:func:`rgb_layer_data`).

    Args:
        stack: The image (any reader's, or built in memory) and its channels.
        max_channel_layers: Above this many channels, return a single layer with a band slider.

    Returns:
        A list of ``(data, kwargs, "image")``; ``data`` is a list of levels when the stack is a pyramid.
    """
    stack_id = uuid.uuid4().hex[:12]
    multiscale = len(stack.levels) > 1
    if is_rgb(stack):
        return [rgb_layer_data(stack, stack_id)]
    data = list(stack.levels) if multiscale else stack.levels[0]
    if stack.count > max_channel_layers:
        preview = materialize(_preview(stack.levels, max_channels=8))  # contrast from 8 bands: cheap on big cubes
        kwargs = {
            "name": stack.name,
            "multiscale": multiscale,
            "contrast_limits": auto_contrast(preview),
            "metadata": _stack_meta(stack, stack_id, None),
            "axis_labels": ("band", "y", "x"),
        }
        spatial = _spatial_kwargs(stack)
        if "scale" in spatial:
            kwargs["scale"] = (1.0, *spatial["scale"])
        if "units" in spatial:
            kwargs["units"] = ("pixel", *spatial["units"])
        return [(data, kwargs, "image")]
    preview = materialize(_preview(stack.levels))
    kwargs = {
        "channel_axis": 0,
        "name": list(stack.channels.names),
        "colormap": channel_colors(stack.channels),
        "blending": "additive",
        "multiscale": multiscale,
        "contrast_limits": [auto_contrast(preview[i]) for i in range(stack.count)],
        "metadata": [_stack_meta(stack, stack_id, i) for i in range(stack.count)],
        **_spatial_kwargs(stack),
    }
    return [(data, kwargs, "image")]
