"""Band selection inside the methane window (onboard benchmark strategies, methane.md section 2.3)."""

from __future__ import annotations

from typing import Any

import numpy as np

from hyperplex.common.errors import InvalidParameterError
from hyperplex.geo.methane.target import target_spectrum

__all__ = ["STRATEGIES", "select_bands"]

STRATEGIES = ("highest-transmittance", "highest-variance", "evenly-spaced")


def select_bands(
    wavelengths: Any,
    n: int,
    strategy: str = "highest-transmittance",
    *,
    fwhm: Any = None,
    window: tuple[float, float] = (2122.0, 2488.0),
) -> np.ndarray:
    """Choose ``n`` bands inside ``window`` for the methane filters.

    Strategies ("transmittance" is the CH4 target value of a band, see :func:`target_spectrum`):

    * ``'highest-transmittance'``: the ``n`` bands with the largest absolute target value;
    * ``'highest-variance'``: greedy max-min spread of target values, starting from the strongest band and
      repeatedly adding the band whose target value is farthest from all selected ones;
    * ``'evenly-spaced'``: ``n`` bands evenly spaced in index across the window.

    Args:
        wavelengths: Band centres of the sensor, nm.
        n: Number of bands to select.
        strategy: One of :data:`STRATEGIES`.
        fwhm: Band FWHM, nm (needed by the target-based strategies; None uses the band spacing).
        window: Wavelength range (nm) the bands are chosen from.

    Returns:
        Sorted indices into ``wavelengths`` (int64), usable as the filters' ``bands=`` argument.

    Raises:
        InvalidParameterError: For an unknown strategy, bad wavelengths or ``n`` outside 1..bands in window.
    """
    wl = np.asarray(wavelengths, dtype=np.float64).ravel()
    if strategy not in STRATEGIES:
        raise InvalidParameterError(f"`strategy` must be one of {STRATEGIES}; got {strategy!r}.")
    if wl.size == 0 or not np.isfinite(wl).all():
        raise InvalidParameterError("`wavelengths` must be a non-empty sequence of finite values (nm).")
    inside = np.flatnonzero((wl >= window[0]) & (wl <= window[1]))
    if not 1 <= int(n) <= inside.size:
        raise InvalidParameterError(
            f"`n` must be between 1 and the {inside.size} bands inside {window[0]:g}-{window[1]:g} nm; got {n}."
        )
    n = int(n)
    if strategy == "evenly-spaced":
        return inside[np.linspace(0, inside.size - 1, n).round().astype(np.int64)]
    values = np.abs(target_spectrum(wl[inside], _fwhm(wl, fwhm)[inside]))
    if strategy == "highest-transmittance":
        chosen = np.argsort(-values, kind="stable")[:n]
    else:
        chosen = _max_min_spread(values, n)
    return np.sort(inside[chosen])


def _max_min_spread(values: np.ndarray, n: int) -> np.ndarray:
    chosen = [int(np.argmax(values))]
    distance = np.abs(values - values[chosen[0]])
    for _ in range(n - 1):
        distance[chosen] = -1.0
        best = int(np.argmax(distance))
        chosen.append(best)
        distance = np.minimum(distance, np.abs(values - values[best]))
    return np.asarray(chosen, dtype=np.int64)


def _fwhm(wl: np.ndarray, fwhm: Any) -> np.ndarray:
    if fwhm is not None:
        out = np.asarray(fwhm, dtype=np.float64).ravel()
        if out.shape != wl.shape:
            raise InvalidParameterError(f"`fwhm` must have one value per band ({wl.size}); got {out.size}.")
        return out
    if wl.size < 2:
        raise InvalidParameterError("Pass `fwhm` when selecting from a single band.")
    return np.abs(np.gradient(wl))
