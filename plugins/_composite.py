"""Additive colour composites of chosen channels, with per-channel contrast. Qt-free.

This is the same picture napari draws with additive blending (each channel mapped linearly from
its contrast limits to black..colour, then summed and clipped), computed in numpy so it can be
saved, tested, or added as an RGB layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hyperplex.common.arrays import materialize
from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import ChannelMismatchError, InvalidParameterError

__all__ = ["additive_composite", "composite_colors", "hex_to_rgb", "percentile_limits"]


def hex_to_rgb(color: str) -> np.ndarray:
    """``"#rrggbb"`` -> float RGB in ``[0, 1]``.

    Raises:
        InvalidParameterError: If the string is not a hex colour.
    """
    text = color.lstrip("#")
    if len(text) not in (6, 8):
        raise InvalidParameterError(f"Colour {color!r} is not '#rrggbb'.")
    try:
        return np.array([int(text[i : i + 2], 16) for i in (0, 2, 4)], dtype=np.float64) / 255.0
    except ValueError as err:
        raise InvalidParameterError(f"Colour {color!r} is not '#rrggbb'.") from err


def _hue_hex(hue: float) -> str:
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(hue, 1.0, 1.0)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def composite_colors(channels: ChannelSet) -> list[str]:
    """Distinct colours for the channels of a composite.

    Channels with their own colours keep them. Spectral channels get hues from blue (shortest
    wavelength) to red (longest) by rank, so three bands make a classic false-colour RGB; named
    channels without colours get evenly spaced hues.

    Args:
        channels: The channels shown.

    Returns:
        One ``"#rrggbb"`` per channel.
    """
    n = len(channels)
    if channels.colors is not None:
        return ["#" + c.lstrip("#").lower()[:6] for c in channels.colors]
    if n == 1:
        return ["#ffffff"]
    order = np.argsort(np.argsort(channels.wavelengths)) if channels.is_spectral else np.arange(n)
    return [_hue_hex(2.0 / 3.0 * (1.0 - rank / (n - 1))) for rank in order]


def percentile_limits(plane: Any, low: float = 1.0, high: float = 99.0) -> tuple[float, float]:
    """Contrast limits at the ``low``/``high`` percentiles of the finite values of ``plane``.

    Args:
        plane: A 2-D array (read into memory).
        low: Lower percentile in ``[0, 100)``.
        high: Upper percentile in ``(low, 100]``.

    Returns:
        ``(lo, hi)`` with ``hi > lo``.

    Raises:
        InvalidParameterError: If the percentiles are out of order or range.
    """
    if not 0 <= low < high <= 100:
        raise InvalidParameterError(f"Need 0 <= low < high <= 100 percentiles; got low={low}, high={high}.")
    values = materialize(plane).astype(np.float64, copy=False)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(values, (low, high)))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def additive_composite(
    planes: Sequence[Any],
    colors: Sequence[str],
    limits: Sequence[tuple[float, float]] | None = None,
) -> np.ndarray:
    """Blend channels additively into an RGB image.

    Each plane is scaled ``(v - lo) / (hi - lo)``, clipped to ``[0, 1]``, tinted with its colour,
    and the tinted planes are summed and clipped to ``[0, 1]``. NaN counts as black.

    Args:
        planes: 2-D arrays of equal shape, one per channel to show.
        colors: One ``"#rrggbb"`` colour per plane.
        limits: Per-plane contrast limits; default 1st/99th percentiles.

    Returns:
        ``(H, W, 3)`` float32 RGB in ``[0, 1]``.

    Raises:
        ChannelMismatchError: If the counts of planes, colours and limits differ, or shapes differ.
    """
    if not planes:
        raise InvalidParameterError("Pick at least one channel for the composite.")
    if len(colors) != len(planes) or (limits is not None and len(limits) != len(planes)):
        raise ChannelMismatchError(
            f"Composite got {len(planes)} channels, {len(colors)} colours and "
            f"{'default' if limits is None else len(limits)} contrast limits; give one of each per channel."
        )
    arrays = [materialize(p).astype(np.float64, copy=False) for p in planes]
    if len({a.shape for a in arrays}) != 1 or arrays[0].ndim != 2:
        raise ChannelMismatchError(f"Composite channels must be 2-D of one shape; got {[a.shape for a in arrays]}.")
    limits = limits if limits is not None else [percentile_limits(a) for a in arrays]
    rgb = np.zeros((*arrays[0].shape, 3), dtype=np.float64)
    for array, color, (lo, hi) in zip(arrays, colors, limits):
        scaled = np.clip((array - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
        rgb += np.nan_to_num(scaled)[..., None] * hex_to_rgb(color)
    return np.clip(rgb, 0.0, 1.0).astype(np.float32)
