"""Find the channel stacks among napari layers and read spectra from them. Qt-free, napari-free.

Works on anything layer-like (``.name``, ``.data``, ``.metadata``, ``.multiscale``,
``.world_to_data``), so it is tested with plain objects and with ``napari.components.ViewerModel``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hyperplex.common.arrays import materialize
from hyperplex.common.channels import ChannelSet
from hyperplex.plugins._layers import META_KEY

__all__ = ["ChannelStack", "Profile", "find_stacks", "pixel_profile", "stack_of"]


@dataclass
class ChannelStack:
    """The napari layers holding one multichannel image.

    Args:
        stack_id: Shared id in the layers' metadata (or the layer name for foreign layers).
        channels: Channel identity of the whole stack.
        layers: One layer per channel in channel order, or a single band-axis layer.
    """

    stack_id: str
    channels: ChannelSet
    layers: list[Any]

    @property
    def band_axis(self) -> bool:
        """True when one layer holds all channels on its first axis."""
        return len(self.layers) == 1 and len(self.channels) > 1

    def planes(self) -> list[Any]:
        """Full-resolution ``(H, W)`` planes, one per channel (lazy where the data is)."""
        if self.band_axis:
            data = _level0(self.layers[0])
            return [data[i] for i in range(data.shape[0])]
        return [_level0(layer) for layer in self.layers]

    def layer_for(self, index: int) -> Any:
        """The layer showing channel ``index`` (the cube layer for a band-axis stack)."""
        return self.layers[0] if self.band_axis else self.layers[index]


@dataclass
class Profile:
    """Values of every channel at one pixel.

    Args:
        values: One value per channel.
        channels: The stack's channels.
        row: Pixel row (level-0 data coordinates).
        col: Pixel column.
    """

    values: np.ndarray
    channels: ChannelSet
    row: int
    col: int

    @property
    def x(self) -> np.ndarray:
        """Wavelengths (nm) for spectral stacks, else channel indices."""
        if self.channels.is_spectral:
            return self.channels.wavelengths
        return np.arange(len(self.channels), dtype=float)

    @property
    def xlabel(self) -> str:
        """Axis label for :attr:`x`."""
        return "wavelength (nm)" if self.channels.is_spectral else "channel"


def _level0(layer: Any) -> Any:
    return layer.data[0] if getattr(layer, "multiscale", False) else layer.data


def _info(layer: Any) -> dict[str, Any] | None:
    meta = getattr(layer, "metadata", None) or {}
    info = meta.get(META_KEY)
    return info if isinstance(info, dict) and "stack" in info and "channels" in info else None


def _is_image(layer: Any) -> bool:
    return type(layer).__name__ == "Image" and not getattr(layer, "rgb", False)


def find_stacks(layers: Iterable[Any]) -> list[ChannelStack]:
    """Group image layers into channel stacks.

    Layers created by the plugin are grouped by their stack id and ordered by channel index; any
    other 2-D image layer is a one-channel stack named after the layer, and any other 3-D image
    layer is a band-axis stack with anonymous channels.

    Args:
        layers: The viewer's layers.

    Returns:
        Stacks in the order their first layer appears.
    """
    groups: dict[str, list[tuple[int, Any]]] = {}
    channels: dict[str, ChannelSet] = {}
    for layer in layers:
        if not _is_image(layer):
            continue
        info = _info(layer)
        if info is None:
            ndim = _level0(layer).ndim
            key = f"layer:{layer.name}"
            channels[key] = ChannelSet([layer.name]) if ndim == 2 else ChannelSet.default(_level0(layer).shape[0])
            groups[key] = [(0, layer)]
            continue
        key = info["stack"]
        channels.setdefault(key, ChannelSet.from_dict(info["channels"]))
        groups.setdefault(key, []).append((info["index"] if info["index"] is not None else 0, layer))
    stacks = []
    for key, members in groups.items():
        ordered = [layer for _, layer in sorted(members, key=lambda item: item[0])]
        cs = channels[key]
        if len(ordered) > 1 and len(ordered) != len(cs):  # some channel layers were deleted
            kept = [_info(layer)["index"] for layer in ordered]
            cs = cs[kept]
        stacks.append(ChannelStack(key, cs, ordered))
    return stacks


def stack_of(layer: Any, layers: Iterable[Any]) -> ChannelStack | None:
    """The stack that contains ``layer``, or None."""
    for stack in find_stacks(layers):
        if any(member is layer for member in stack.layers):
            return stack
    return None


def _data_pixel(layer: Any, world_position: Sequence[float]) -> tuple[int, int]:
    coords = np.asarray(layer.world_to_data(world_position), dtype=float)
    return int(np.floor(coords[-2] + 0.5)), int(np.floor(coords[-1] + 0.5))


def pixel_profile(stack: ChannelStack, world_position: Sequence[float]) -> Profile | None:
    """Values of every channel of ``stack`` at a world position (e.g. a mouse click).

    Args:
        stack: The stack.
        world_position: Position in world coordinates (napari's ``event.position``).

    Returns:
        The profile, or None when the position is outside the image.
    """
    row, col = _data_pixel(stack.layers[0], world_position)
    height, width = _level0(stack.layers[0]).shape[-2:]
    if not (0 <= row < height and 0 <= col < width):
        return None
    if stack.band_axis:
        values = materialize(_level0(stack.layers[0])[:, row, col])
    else:
        values = np.array([float(materialize(plane[row, col])) for plane in stack.planes()])
    return Profile(np.asarray(values, dtype=np.float64), stack.channels, row, col)
