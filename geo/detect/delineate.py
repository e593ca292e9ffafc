"""Plume candidates from an enhancement map: NaN-aware smoothing, threshold, connected components."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hyperplex.geo.detect.config import DelineationConfig
from hyperplex.geo.image_ops import gaussian_smooth, label8

__all__ = ["Delineation", "delineate", "nan_gaussian", "robust_background"]

_STATS_SAMPLE = 200_000


def nan_gaussian(values: np.ndarray, valid: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur that ignores invalid pixels (normalised convolution); NaN outside ``valid``."""
    if sigma <= 0:
        return np.where(valid, values, np.nan)
    w = valid.astype(np.float64)
    num = gaussian_smooth(np.where(valid, values, 0.0).astype(np.float64), sigma)
    den = gaussian_smooth(w, sigma)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    return np.where(valid, out, np.nan).astype(np.float32)


def robust_background(values: np.ndarray) -> tuple[float, float]:
    """Median and a robust standard deviation of the finite values.

    The deviation is the larger of the MAD estimate and the RMS deviation of the values between the
    1st and 99th percentiles: the MAD alone collapses to 0 on sparse maps such as Mag1c's, where most
    background pixels are exactly zero.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 0.0
    if finite.size > _STATS_SAMPLE:  # a regular subsample: the same statistics to well under 1 %, 10x faster
        finite = finite[:: finite.size // _STATS_SAMPLE]
    median = float(np.median(finite))
    lo, hi = np.percentile(finite, [1.0, 99.0])
    core = finite[(finite >= lo) & (finite <= hi)]
    rms = float(np.sqrt(np.mean((core - median) ** 2))) if core.size else 0.0
    return median, max(float(1.4826 * np.median(np.abs(finite - median))), rms)


@dataclass
class Delineation:
    """Candidate plumes before vetting.

    Attributes:
        labels: Candidate id per pixel (0 = none), int32.
        smoothed: The smoothed enhancement.
        threshold: The threshold applied to ``smoothed`` (from the smoothed map's own statistics).
        background: ``(median, sigma)`` of the unsmoothed enhancement (for signal-to-noise ratios).
        peaks: Smoothed peak per candidate id (index = id - 1).
    """

    labels: np.ndarray
    smoothed: np.ndarray
    threshold: float
    background: tuple[float, float]
    peaks: list[float]


def delineate(enh: np.ndarray, valid: np.ndarray, cfg: DelineationConfig, *, absolute: bool = True) -> Delineation:
    """Find plume candidates.

    The smoothed map is thresholded at the larger of ``cfg.threshold`` and ``background_k`` robust
    standard deviations above its median. With hysteresis, a candidate is an 8-connected region
    above ``cfg.low_fraction`` of that threshold that contains a pixel above it, whose smoothed peak
    reaches ``cfg.min_peak`` and that has at least ``cfg.min_pixels`` pixels.

    Args:
        enh: Enhancement (H, W), NaN where invalid.
        valid: Pixels to consider.
        cfg: Delineation options.
        absolute: Apply the absolute ppm·m thresholds (False for unitless scores: statistics only).

    Returns:
        The candidates.
    """
    valid = valid & np.isfinite(enh)
    smoothed = nan_gaussian(enh, valid, cfg.sigma)
    median, sigma = robust_background(smoothed)
    threshold = median + cfg.background_k * sigma
    if absolute:
        threshold = max(threshold, cfg.threshold)
    with np.errstate(invalid="ignore"):  # hysteresis: grow from the threshold down to its low fraction
        comps, n = label8(smoothed > cfg.low_fraction * threshold)
    min_peak = cfg.min_peak if absolute else threshold
    labels, peaks = _keep(comps, n, smoothed, cfg.min_pixels, max(min_peak, threshold))
    return Delineation(labels, smoothed, float(threshold), robust_background(enh[valid]), peaks)


def _keep(
    comps: np.ndarray, n: int, smoothed: np.ndarray, min_pixels: int, min_peak: float
) -> tuple[np.ndarray, list[float]]:
    """Relabel 1..k the components with at least ``min_pixels`` pixels and a peak of ``min_peak`` (vectorised)."""
    if n == 0:
        return np.zeros(comps.shape, dtype=np.int32), []
    inside = comps > 0
    ids, values = comps[inside], smoothed[inside]
    sizes = np.bincount(ids, minlength=n + 1)[1:]
    with np.errstate(invalid="ignore"):
        high = values >= min_peak  # only these pixels can make a component's peak qualify (few)
    peak = np.full(n + 1, -np.inf)
    np.maximum.at(peak, ids[high], values[high])
    peak = peak[1:]
    kept = (sizes >= min_pixels) & (peak >= min_peak)
    lookup = np.zeros(n + 1, dtype=np.int32)
    lookup[1:][kept] = np.arange(1, int(kept.sum()) + 1)
    return lookup[comps], [float(v) for v in peak[kept]]
