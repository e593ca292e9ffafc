"""Checks the hyperspectral readers share: band order and byte order (sizes: :mod:`hyperplex.common.filechecks`).

Each raises :class:`~hyperplex.common.errors.FileFormatError` naming the file and the problem, or warns
where the data stay usable but are doubtful, before anything large is allocated.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import FileFormatError

__all__ = ["check_band_order", "looks_byte_swapped", "spacing_fwhm"]


def check_band_order(channels: ChannelSet, source: str | Path) -> ChannelSet:
    """Refuse repeated band centres; warn when the bands are not in increasing wavelength order.

    Args:
        channels: The file's channels.
        source: The file, for the message.

    Returns:
        ``channels`` unchanged.

    Raises:
        FileFormatError: If two bands have the same centre wavelength.
    """
    wl = channels.wavelengths
    if wl is None or wl.size < 2:
        return channels
    values, counts = np.unique(wl, return_counts=True)
    if (counts > 1).any():
        repeated = ", ".join(f"{v:g}" for v in values[counts > 1][:5])
        raise FileFormatError(
            f"{source}: band wavelengths repeat ({repeated} nm); each band needs its own centre wavelength. "
            "Fix the file's wavelength metadata."
        )
    if (np.diff(wl) < 0).any():
        warnings.warn(f"{source}: bands are not in increasing wavelength order; they are used by wavelength, "
                      "but check the file's wavelength metadata.", UserWarning, stacklevel=3)  # fmt: skip
    return channels


def looks_byte_swapped(sample: np.ndarray) -> bool:
    """True when float values look byte-swapped: many absurd magnitudes that swapping back makes ordinary.

    Args:
        sample: A few thousand values of a floating-point file, as read.
    """
    values = np.asarray(sample).ravel()
    if values.dtype.kind != "f" or values.size == 0:
        return False
    return _wild_fraction(values) > 0.2 and _wild_fraction(values.byteswap()) < 0.05


def _wild_fraction(values: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        mag = np.abs(values.astype(np.float64))
    nonzero = mag[mag != 0]
    if nonzero.size == 0:
        return 0.0
    wild = ~np.isfinite(nonzero) | (nonzero > 1e30) | (nonzero < 1e-30)
    return float(wild.mean())


def spacing_fwhm(channels: ChannelSet, path: Path) -> tuple[ChannelSet, dict[str, Any]]:
    """Spectral bands without FWHM get the band spacing as FWHM (Nyquist sampling), with a warning and a record."""
    if channels.wavelengths is None or channels.fwhm is not None or len(channels) < 2:
        return channels, {}
    wl = channels.wavelengths
    order = np.argsort(wl)
    spacing = np.empty_like(wl)
    spacing[order] = np.maximum(np.abs(np.gradient(wl[order])), 1e-3)
    warnings.warn(f"{path}: the bands carry no FWHM; using the band spacing as FWHM (recorded as "
                  "attribute fwhm_source='band spacing'). Add fwhm tags for exact results.", UserWarning,
                  stacklevel=4)  # fmt: skip
    fixed = ChannelSet.from_wavelengths(wl, spacing, names=channels.names, good=channels.good)
    return fixed, {"fwhm_source": "band spacing"}
