"""The instrument and absorption side of the synthetic scene: band responses, CH4 model, surfaces, noise.

:func:`make_optics` turns :class:`~hyperplex.geo.synth.settings.SceneSettings` into arrays the radiance
assembly uses: per detector-column group (band centres shifted by up to ``srf_shift_nm``) the radiance
per unit reflectance and the CH4 log-transmittance knots; the surface library; the look-alike factor;
per-column striping offsets; and the noise model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from hyperplex.geo.synth.settings import SceneSettings
from hyperplex.geo.synth.spectra import (
    ch4_log_transmittance,
    endmember_reflectance,
    linearised,
    pad_absorber,
    reference_radiance,
    second_library,
    transmittance,
)

__all__ = ["Optics", "make_optics"]

_NOISE_A, _NOISE_B, _NOISE_C = 0.0018, 0.27, 0.0004  # NEdL = A*sqrt(B + L) + C (EMIT-like, per band)
_CORRELATED_SCALE, _CORRELATED_SHARE, _CORRELATED_SIGMA = 1.25, 0.4, 1.5


@dataclass
class Optics:
    """Arrays of one scene's physics (G = column groups, K = CH4 knots, B = bands, M = endmembers).

    Attributes:
        base: Radiance per unit reflectance per group, (G, B).
        knots: CH4 enhancements of the log-transmittance knots, ppm·m, (K,).
        tau: Log-transmittance at the knots per group, (G, K, B).
        column_group: Group of each detector column, (samples,) int.
        shapes: Surface library reflectances, (M, B).
        lookalike: Multiplicative reflectance factor of look-alike surfaces, (B,).
        stripes: Additive per-column SWIR offsets, (samples, B).
        noise_model: 'emit' or 'emit-correlated'.
    """

    base: np.ndarray
    knots: np.ndarray
    tau: np.ndarray
    column_group: np.ndarray
    shapes: np.ndarray
    lookalike: np.ndarray
    stripes: np.ndarray
    noise_model: str

    def transmittance(self, ppmm: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """CH4 transmittance (N, B) of pixels with enhancement ``ppmm`` in detector columns ``cols``."""
        out = np.empty((ppmm.size, self.base.shape[1]))
        groups = self.column_group[cols]
        for g in np.unique(groups):
            sel = groups == g
            out[sel] = transmittance(ppmm[sel], self.knots, self.tau[g])
        return out

    def noise(self, rng: np.random.Generator, x: np.ndarray, scale: float) -> np.ndarray:
        """One draw of instrument noise for radiance ``x`` (..., B), times ``scale``."""
        nedl = _NOISE_A * np.sqrt(_NOISE_B + np.clip(x, 0, None)) + _NOISE_C
        if self.noise_model == "emit":
            return scale * nedl * rng.standard_normal(x.shape)
        kernel = np.exp(-0.5 * (np.arange(-6, 7) / _CORRELATED_SIGMA) ** 2)
        norm = np.sqrt(np.sum((kernel / kernel.sum()) ** 2))  # std of smoothed white noise
        smooth = ndimage.gaussian_filter1d(rng.standard_normal(x.shape), _CORRELATED_SIGMA, axis=-1) / norm
        mix = np.sqrt(1 - _CORRELATED_SHARE) * rng.standard_normal(x.shape) + np.sqrt(_CORRELATED_SHARE) * smooth
        return scale * _CORRELATED_SCALE * nedl * mix


def _group_physics(wl: np.ndarray, fwhm: np.ndarray, shift: float, linear: bool) -> tuple[np.ndarray, ...]:
    """Radiance per unit reflectance, CH4 knots and log-transmittance for band centres ``wl + shift``."""
    true_wl = wl + shift
    base = reference_radiance(true_wl, fwhm) / 0.3
    knots, tau = ch4_log_transmittance(true_wl, fwhm)
    return (base, *linearised(knots, tau)) if linear else (base, knots, tau)


def make_optics(
    rng: np.random.Generator, wl: np.ndarray, fwhm: np.ndarray, samples: int, settings: SceneSettings
) -> Optics:
    """Build the scene's physics from ``settings`` (``rng`` is used only by non-default settings)."""
    wl, fwhm = np.asarray(wl, np.float64), np.asarray(fwhm, np.float64)
    groups = settings.srf_groups if settings.srf_shift_nm > 0 else 1
    shifts = rng.uniform(-settings.srf_shift_nm, settings.srf_shift_nm, groups) if groups > 1 else np.zeros(1)
    parts = [_group_physics(wl, fwhm, float(d), settings.absorption == "linear") for d in shifts]
    base = np.stack([p[0] for p in parts])
    column_group = np.minimum(np.arange(samples) * groups // samples, groups - 1)
    shapes = endmember_reflectance(wl) if settings.surfaces == "soil-veg-rock" else second_library(wl)
    carbonate = 1.0 - 0.12 * np.exp(-0.5 * ((wl - 2335.0) / 30.0) ** 2) - 0.04 * np.exp(-0.5 * ((wl - 2160) / 25) ** 2)
    lookalike = carbonate if settings.lookalike == "carbonate" else pad_absorber(wl)
    stripes = np.zeros((samples, wl.size))
    if settings.striping > 0:
        level = 0.3 * base[0][(wl >= 2122) & (wl <= 2488)].mean()
        stripes[:, wl > 1000] = settings.striping * level * rng.standard_normal((samples, 1))
    return Optics(base, parts[0][1], np.stack([p[2] for p in parts]), column_group, shapes, lookalike, stripes,
                  settings.noise_model)  # fmt: skip
