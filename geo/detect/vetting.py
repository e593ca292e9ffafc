"""Tell methane from look-alikes: physical and statistical tests and a confidence per candidate.

Matched filters light up on anything that projects onto the CH4 absorption shape: surfaces that
absorb near 2300 nm (carbonates), dark water, saturated or flaring pixels and detector stripes.
Each candidate is scored on
- ``snr``: mean enhancement over the robust background standard deviation (noise blobs that survive
  the smoothed threshold have a low one);
- ``spectral_score``: correlation between the fine structure (high-pass over wavelength) of the
  candidate's log radiance ratio against its surroundings and that of the CH4 absorption. Methane
  leaves its narrow lines; a mineral leaves a broad band that the high-pass removes;
- ``masked_edge_fraction``: share of its rim that is masked (dark, saturated, flare, fill);
- ``stripe_like``: confined to one or two detector columns along track;
- ``elongation`` (major over minor axis) and ``albedo_contrast`` (ln of the candidate's brightness over
  its surroundings': look-alikes and shorelines differ in brightness, plumes do not);
- ``peak_snr`` (added by the plume table): smoothed peak over the background standard deviation.

These are combined into a calibrated probability by a logistic model fitted on the tuning scene family
(:mod:`hyperplex.geo.detect.calibration`); candidates below ``min_probability`` are rejected and stay in
run.json with their probability.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hyperplex.geo.detect.calibration import plume_probability
from hyperplex.geo.detect.config import DelineationConfig
from hyperplex.geo.image_ops import bounding_boxes, dilate_disk, gaussian_smooth, padded_box

__all__ = ["candidate_features", "confidence", "feature_window", "is_rejected", "spectral_score"]

_HIGHPASS_SIGMA_BANDS = 2.0


def _highpass(spectrum: np.ndarray) -> np.ndarray:
    return spectrum - gaussian_smooth(spectrum, _HIGHPASS_SIGMA_BANDS, edge="nearest")


def spectral_score(core: np.ndarray, ring: np.ndarray, template: np.ndarray) -> tuple[float, float]:
    """Correlation of the high-passed log ratio ``ln(core / ring)`` with the high-passed CH4 template.

    Args:
        core: Mean radiance spectrum inside the candidate, (C,).
        ring: Mean radiance spectrum of the surroundings, (C,).
        template: Unit CH4 absorption (x 1e5) of the same bands, (C,).

    Returns:
        ``(correlation, ppm·m implied by the fine structure)``; ``(0, 0)`` when undefined.
    """
    ok = (core > 0) & (ring > 0) & np.isfinite(core) & np.isfinite(ring)
    if ok.sum() < 5:
        return 0.0, 0.0
    r = _highpass(np.log(core[ok] / ring[ok]))
    k = _highpass(np.asarray(template, np.float64)[ok] / 1e5)
    denom = np.linalg.norm(r) * np.linalg.norm(k)
    if denom == 0:
        return 0.0, 0.0
    return float(r @ k / denom), float(r @ k / (k @ k))


def _mean_spectrum(cube: np.ndarray, where: np.ndarray) -> np.ndarray:
    if not where.any():
        return np.full(cube.shape[0], np.nan)
    return np.nanmean(cube[:, where], axis=1)


def feature_window(box: tuple[slice, ...], shape: tuple[int, ...]) -> tuple[slice, ...]:
    """The window :func:`candidate_features` needs around a candidate's bounding box ``box``."""
    return padded_box(box, _MARGIN_PX, shape)


#: Margin around a candidate that holds its ring of surroundings (dilations by up to 6 px) and its rim.
_MARGIN_PX = 8


def candidate_features(
    index: int,
    labels: np.ndarray,
    enh: np.ndarray,
    cube: np.ndarray,
    template: np.ndarray,
    excluded: np.ndarray,
    background_sigma: float,
    window: tuple[slice, ...] | None = None,
) -> dict[str, Any]:
    """Vetting features of candidate ``index`` (see the module docstring).

    ``window``: :func:`feature_window` of the candidate's bounding box (found here when not given).
    """
    win = window or feature_window(bounding_boxes(labels)[index], labels.shape)
    labels, enh, excluded, cube = labels[win], enh[win], excluded[win], cube[(slice(None), *win)]
    inside = labels == index
    rows, cols = np.nonzero(inside)
    usable = ~excluded & (labels == 0)
    ring = dilate_disk(inside, 6) & ~dilate_disk(inside, 2) & usable
    core = inside & (enh >= np.nanpercentile(enh[inside], 50))
    corr, implied = spectral_score(_mean_spectrum(cube, core), _mean_spectrum(cube, ring), template)
    rim = dilate_disk(inside, 2) & ~inside
    width = int(np.unique(cols).size)
    length = int(rows.max() - rows.min() + 1)
    return {
        "snr": float(np.nanmean(enh[inside]) / background_sigma) if background_sigma > 0 else float("inf"),
        "spectral_score": corr,
        "spectral_ppmm": implied,
        "masked_edge_fraction": float(excluded[rim].mean()) if rim.any() else 0.0,
        "stripe_like": bool(width <= 2 and length >= 6),
        "elongation": _elongation(rows, cols),
        "albedo_contrast": _albedo_contrast(cube, core, ring),
    }


def _elongation(rows: np.ndarray, cols: np.ndarray) -> float:
    """Ratio of the major to the minor axis of the candidate's pixel distribution (1 = round)."""
    if rows.size < 3:
        return 1.0
    eig = np.linalg.eigvalsh(np.cov(np.stack([rows, cols]).astype(np.float64)) + np.eye(2) / 12.0)
    return float(np.sqrt(eig[1] / eig[0]))


def _albedo_contrast(cube: np.ndarray, core: np.ndarray, ring: np.ndarray) -> float:
    """``ln`` of the candidate core's mean brightness over its surroundings' (0 = same surface brightness)."""
    if not core.any() or not ring.any():
        return 0.0
    inner, outer = np.nanmean(cube[:, core]), np.nanmean(cube[:, ring])
    return float(np.log(inner / outer)) if inner > 0 and outer > 0 else 0.0


def confidence(features: dict[str, Any], method: str = "mag1c") -> tuple[float, str]:
    """The calibrated plume probability (:mod:`hyperplex.geo.detect.calibration`) and its class.

    Classes: 'high' (>= 0.9), 'medium' (>= 0.5), 'low'.
    """
    p = plume_probability(features, method)
    label = "high" if p >= 0.9 else "medium" if p >= 0.5 else "low"
    return round(p, 3), label


def is_rejected(features: dict[str, Any], cfg: DelineationConfig, method: str = "mag1c") -> str | None:
    """Why a candidate is rejected, or None to keep it.

    A candidate is kept when its calibrated probability reaches ``cfg.min_probability``; stripe-like
    candidates and those under the optional hand-set floors ``cfg.min_snr`` and
    ``cfg.min_spectral_score`` (off by default) are rejected too.
    """
    if not cfg.vet:
        return None
    if features["stripe_like"]:
        return "confined to one or two detector columns (striping)"
    if features["snr"] < cfg.min_snr:
        return f"weak: mean only {features['snr']:.2f} background standard deviations (min_snr)"
    if features["spectral_score"] < cfg.min_spectral_score:
        return f"spectrum does not show CH4 fine structure (score {features['spectral_score']:.2f})"
    p = plume_probability(features, method)
    if p < cfg.min_probability:
        return f"plume probability {p:.2f} < {cfg.min_probability:.2f} ({_weakest(features)})"
    return None


def _weakest(features: dict[str, Any]) -> str:
    """A short account of the candidate's evidence, for the rejection reason."""
    return (f"SNR {features['snr']:.1f}, peak SNR {features['peak_snr']:.1f}, spectral score "
            f"{features['spectral_score']:.2f}, {features.get('pixels', 0)} px")  # fmt: skip
