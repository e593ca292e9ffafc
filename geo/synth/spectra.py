"""Spectral ingredients of the synthetic EMIT scene: band grid, at-sensor radiance, surfaces, CH4."""

from __future__ import annotations

import numpy as np

from hyperplex.geo.ch4lut import load_ch4_lut

__all__ = [
    "EMIT_BANDS",
    "ch4_log_transmittance",
    "emit_band_grid",
    "endmember_reflectance",
    "reference_radiance",
    "transmittance",
]

#: Number of EMIT bands.
EMIT_BANDS = 285
_LUT_CUTOFF_NM = 1420.0  # below this the LUT (which starts at 1399.6 nm) does not cover a band's response
_WATER_BANDS = ((940.0, 40.0, 0.55), (1140.0, 45.0, 0.45), (1380.0, 60.0, 0.97), (1880.0, 70.0, 0.97))


def emit_band_grid() -> tuple[np.ndarray, np.ndarray]:
    """EMIT-like band centres and FWHM in nm (285 bands, 381.0-2492.9 nm, FWHM 8.4-8.8 nm).

    Returns:
        ``(wavelengths, fwhm)`` as float32 arrays.
    """
    wl = 381.006 + 7.4363 * np.arange(EMIT_BANDS)
    fwhm = 8.635 + (wl - 1573.0) * (8.809 - 8.635) / (2493.0 - 1573.0)
    return wl.astype(np.float32), fwhm.astype(np.float32)


def _solar_like(wl: np.ndarray) -> np.ndarray:
    """Smooth 5778 K Planck shape with water-vapour dips, arbitrary scale."""
    lam = wl * 1e-9
    planck = 1.0 / (lam**5 * (np.exp(1.4388e-2 / (lam * 5778.0)) - 1.0))
    dips = np.ones_like(wl, dtype=np.float64)
    for centre, width, depth in _WATER_BANDS:
        dips *= 1.0 - depth * np.exp(-0.5 * ((wl - centre) / width) ** 2)
    return planck * dips


def reference_radiance(wl: np.ndarray, fwhm: np.ndarray) -> np.ndarray:
    """At-sensor radiance of a reference surface with no extra CH4, in uW/cm^2/sr/nm.

    SWIR bands are the mag1c CH4 LUT (zero enhancement) convolved with Gaussian band responses;
    bands below 1420 nm use a smooth solar-like curve matched to the LUT in the 1500-1650 nm window.

    Args:
        wl: Band centres in nm.
        fwhm: Band FWHM in nm.

    Returns:
        float64 radiance per band.
    """
    lut = load_ch4_lut()
    swir = lut.convolve(np.asarray(wl, np.float64), np.asarray(fwhm, np.float64))[0]
    solar = _solar_like(np.asarray(wl, np.float64))
    match = (wl >= 1500) & (wl <= 1650)
    solar *= swir[match].mean() / solar[match].mean()
    return np.where(wl >= _LUT_CUTOFF_NM, swir, solar)


def ch4_log_transmittance(wl: np.ndarray, fwhm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Band-integrated CH4 log-transmittance at the LUT's knots: ``ln L_c - ln L_0``.

    Returns:
        ``(concentrations (7,), tau (7, B))``; tau is 0 for bands outside the LUT.
    """
    lut = load_ch4_lut()
    bands = lut.convolve(np.asarray(wl, np.float64), np.asarray(fwhm, np.float64))
    tau = np.zeros_like(bands)
    ok = (np.asarray(wl) >= _LUT_CUTOFF_NM) & np.all(bands > 0, axis=0)
    tau[:, ok] = np.log(bands[:, ok]) - np.log(bands[0, ok])
    return lut.concentrations, tau


def transmittance(ppmm: np.ndarray, knots: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Beer-Lambert CH4 transmittance, log-linear between LUT knots (last segment extrapolated).

    Args:
        ppmm: Enhancements in ppm·m, shape (N,).
        knots: LUT concentrations, shape (K,).
        tau: Log-transmittance at the knots, shape (K, B).

    Returns:
        Transmittance, shape (N, B).
    """
    c = np.asarray(ppmm, dtype=np.float64)
    seg = np.clip(np.searchsorted(knots, c, side="right") - 1, 0, len(knots) - 2)
    frac = (c - knots[seg]) / (knots[seg + 1] - knots[seg])
    log_t = tau[seg] + frac[:, None] * (tau[seg + 1] - tau[seg])
    return np.exp(log_t)


def endmember_reflectance(wl: np.ndarray) -> np.ndarray:
    """Three smooth surface reflectance shapes (soil, vegetation, rock), shape (3, B).

    They differ strongly in the visible and NIR (so the true-colour quicklook has structure) and
    carry small, distinct ripples in the SWIR (so the background covariance is realistic). Each is
    scaled to a mean reflectance of 0.3 over 2122-2488 nm.
    """
    wl = np.asarray(wl, np.float64)
    sig = 1.0 / (1.0 + np.exp(-(wl - 700.0) / 120.0))
    soil = 0.12 + 0.28 * sig - 0.04 * ((wl - 1600.0) / 900.0) ** 2
    green = 0.04 * np.exp(-0.5 * ((wl - 550.0) / 35.0) ** 2)
    red_edge = 0.45 / (1.0 + np.exp(-(wl - 715.0) / 18.0))
    veg = 0.04 + green + red_edge * np.clip(1.0 - (wl - 1100.0) / 2600.0, 0.3, 1.0) - 0.08 * (wl > 1500)
    rock = 0.30 + 0.05 * (wl - 1000.0) / 1500.0
    shapes = np.clip(np.stack([soil, veg, rock]), 0.02, None)
    for m in range(3):
        shapes[m] *= 1.0 + 0.05 * np.sin((m + 1) * (wl - 2122.0) / 60.0) * (wl > 1900)
    # equal mean brightness in the CH4 window: brightness is the albedo field's job, shape the mixture's
    window = (wl >= 2122) & (wl <= 2488)
    if window.any():
        shapes *= 0.3 / shapes[:, window].mean(axis=1, keepdims=True)
    return shapes
