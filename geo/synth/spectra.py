"""Spectral ingredients of the synthetic EMIT scene: band grid, at-sensor radiance, surfaces, CH4."""

from __future__ import annotations

import functools

import numpy as np

from hyperplex.geo.ch4lut import load_ch4_lut

__all__ = [
    "EMIT_BANDS",
    "linearised",
    "pad_absorber",
    "second_library",
    "ch4_log_transmittance",
    "convolved_lut",
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


def convolved_lut(wl: np.ndarray, fwhm: np.ndarray) -> np.ndarray:
    """The CH4 LUT's 7 radiance spectra averaged over Gaussian band responses, (7, B); cached per band set."""
    wl, fwhm = np.asarray(wl, np.float64), np.asarray(fwhm, np.float64)
    return _convolved(wl.tobytes(), fwhm.tobytes()).copy()


@functools.lru_cache(maxsize=8)
def _convolved(wl_bytes: bytes, fwhm_bytes: bytes) -> np.ndarray:
    return load_ch4_lut().convolve(np.frombuffer(wl_bytes), np.frombuffer(fwhm_bytes))


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
    swir = convolved_lut(wl, fwhm)[0]
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
    bands = convolved_lut(wl, fwhm)
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


def _band(wl: np.ndarray, centre: float, width: float, depth: float) -> np.ndarray:
    """Multiplicative Gaussian absorption band."""
    return 1.0 - depth * np.exp(-0.5 * ((wl - centre) / width) ** 2)


def second_library(wl: np.ndarray) -> np.ndarray:
    """A second surface library (clay, dry grass, sand, asphalt), shape (4, B), same scaling as the first.

    Different shapes from :func:`endmember_reflectance`: a kaolinite-like doublet (2165/2205 nm), cellulose
    and lignin bands of dry vegetation (2100, 2270 nm), a bright flat sand and a dark asphalt with a weak
    hydrocarbon band at 2310 nm; no sinusoidal ripples.
    """
    wl = np.asarray(wl, np.float64)
    rise = 1.0 / (1.0 + np.exp(-(wl - 600.0) / 150.0))
    clay = (
        (0.2 + 0.35 * rise) * _band(wl, 2165.0, 12.0, 0.06) * _band(wl, 2205.0, 15.0, 0.12) * _band(wl, 1400, 30, 0.2)
    )
    grass = (0.08 + 0.3 * rise) * _band(wl, 2100.0, 35.0, 0.08) * _band(wl, 2270.0, 40.0, 0.05)
    sand = 0.25 + 0.25 * rise - 0.02 * ((wl - 1800.0) / 700.0) ** 2
    asphalt = (0.06 + 0.04 * wl / 2500.0) * _band(wl, 2310.0, 25.0, 0.03)
    shapes = np.clip(np.stack([clay, grass, sand, asphalt]), 0.02, None)
    window = (wl >= 2122) & (wl <= 2488)
    if window.any():
        shapes *= 0.3 / shapes[:, window].mean(axis=1, keepdims=True)
    return shapes


def pad_absorber(wl: np.ndarray) -> np.ndarray:
    """Multiplicative reflectance factor of look-alike pads: absorptions at 2260 and 2330 nm (18 nm wide)."""
    wl = np.asarray(wl, np.float64)
    return _band(wl, 2260.0, 18.0, 0.06) * _band(wl, 2330.0, 18.0, 0.10)


def linearised(knots: np.ndarray, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots and log-transmittance of the *linear* model ``ln T = k c`` (k: least-squares slope through the LUT).

    With two knots (0 and 1e6 ppm·m), :func:`transmittance` then evaluates ``exp(k c)`` exactly.
    """
    c = knots - knots.mean()
    k = c @ (tau - tau.mean(axis=0)) / (c @ c)
    top = 1e6
    return np.array([0.0, top]), np.stack([np.zeros_like(k), k * top])
