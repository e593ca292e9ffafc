"""True-colour quicklooks, optionally with an enhancement overlay, plume outlines and a colour bar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hyperplex.common.arrays import materialize
from hyperplex.common.atomic import atomic_path
from hyperplex.common.channels import ChannelSet

__all__ = ["RGB_NM", "rgb_image", "stretch", "true_color", "write_quicklook"]

#: Band centres used for red, green and blue.
RGB_NM = (640.0, 550.0, 460.0)
_MAX_PIXELS = 1000  # longest side drawn in a quicklook


def stretch(band: np.ndarray, low: float = 2.0, high: float = 98.0) -> np.ndarray:
    """Linear stretch of the ``low``-``high`` percentile range to [0, 1] (NaN-aware)."""
    finite = band[np.isfinite(band)]
    if finite.size == 0:
        return np.zeros_like(band, dtype=np.float32)
    lo, hi = np.percentile(finite, [low, high])
    return np.clip((band - lo) / max(hi - lo, 1e-12), 0.0, 1.0).astype(np.float32)


def true_color(cube: Any, channels: ChannelSet) -> np.ndarray:
    """RGB image ``(H, W, 3)`` in [0, 1] from the bands nearest 640/550/460 nm (2-98 % stretch).

    Args:
        cube: ``(C, H, W)`` radiance or reflectance (any supported array type; only 3 bands are read).
        channels: The cube's channels (wavelengths required).

    Returns:
        float32 RGB; no-data pixels are black.
    """
    bands = np.stack([materialize(cube[channels.nearest(w)]).astype(np.float32) for w in RGB_NM])
    return rgb_image(bands)


def rgb_image(bands: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` display RGB in [0, 1] from red, green, blue bands ``(3, H, W)``; no-data pixels black."""
    rgb = np.stack([stretch(b) for b in bands], axis=-1)
    rgb[~np.isfinite(bands).all(axis=0)] = 0.0
    return rgb


def write_quicklook(
    path: str | Path,
    rgb: np.ndarray,
    *,
    overlay: np.ndarray | None = None,
    overlay_range: tuple[float, float] | None = None,
    overlay_label: str = "CH4 enhancement (ppm·m)",
    outlines: np.ndarray | None = None,
    title: str | None = None,
) -> Path:
    """Write a PNG: RGB background, an optional semi-transparent overlay with colour bar, outlines.

    Args:
        path: Output PNG (written atomically).
        rgb: ``(H, W, 3)`` in [0, 1].
        overlay: ``(H, W)`` values to overlay (NaN and values below the range start are transparent).
        overlay_range: Colour scale limits; default the overlay's 90th-99.8th percentiles (floored at 0).
        overlay_label: Colour bar label.
        outlines: ``(H, W)`` integer labels whose boundaries are drawn.
        title: Figure title.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    step = max(1, -(-max(rgb.shape[:2]) // _MAX_PIXELS))  # a screen-sized figure needs no more pixels
    rgb = rgb[::step, ::step]
    overlay = None if overlay is None else overlay[::step, ::step]
    outlines = None if outlines is None else outlines[::step, ::step]
    h, w = rgb.shape[:2]
    fig, ax = plt.subplots(figsize=(8, 8 * h / max(w, 1) + 0.6), dpi=110)
    ax.imshow(rgb, interpolation="nearest")
    if overlay is not None:
        vmin, vmax = overlay_range or _overlay_range(overlay)
        shown = np.ma.masked_where(~np.isfinite(overlay) | (overlay < vmin), overlay)
        im = ax.imshow(shown, cmap="plasma", vmin=vmin, vmax=vmax, alpha=0.75, interpolation="nearest")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label=overlay_label)
    if outlines is not None and np.any(outlines > 0):
        ax.contour(outlines > 0, levels=[0.5], colors="cyan", linewidths=0.8)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def _overlay_range(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [90.0, 99.8])
    return float(max(lo, 0.0)), float(max(hi, lo + 1e-6))
