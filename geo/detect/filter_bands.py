"""The bands a detection filters: the window, or a selection inside it (light: the CLI's start-up reads it too)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import InvalidParameterError
from hyperplex.geo.detect.config import DetectConfig

__all__ = ["filter_bands"]


def filter_bands(channels: ChannelSet, cfg: DetectConfig, path: str | Path) -> np.ndarray:
    """Sorted indices of the bands the filter uses: those in ``cfg.window``, or ``cfg.bands`` chosen inside it.

    Args:
        channels: The scene's bands.
        cfg: The detection options (``window``, ``bands``, ``band_strategy``).
        path: The scene, for messages.

    Raises:
        InvalidParameterError: If fewer than 3 bands are left.
    """
    idx = channels.window(*cfg.window)
    if cfg.bands is not None:
        from hyperplex.geo.methane import select_bands

        idx = np.asarray(
            select_bands(channels.wavelengths, cfg.bands, cfg.band_strategy, fwhm=channels.fwhm, window=cfg.window)
        )
    if idx.size < 3:
        raise InvalidParameterError(f"{path}: only {idx.size} bands inside the window {cfg.window} nm; widen --window.")
    return np.sort(idx)
