"""The plume-free, albedo-corrected matched filter per detector column, shared by the IME and the uncertainty.

One streamed pass of column statistics over the plume-free pixels gives, per column, the mean ``mu``, the
filter's weights ``w = C_s^-1 t / (t^T C_s^-1 t)`` (``t = k * mu``, ``C_s`` the shrunk covariance, ppm·m per
radiance unit) and the precision ``1 / (w^T C w)`` of its estimate at albedo R = 1. Columns with no more
plume-free pixels than bands take the scene's statistics (the columns' pooled). The enhancement of a pixel is

    alpha_i = w^T (x_i - mu) / R_i,  R_i = x_i . mu / mu . mu

(Mag1c's first estimate without sparsity or clipping, Foote et al. 2020) and its 1 sigma ``1 / (R_i sqrt(precision))``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from hyperplex.geo.methane.backend import einsum, like, to_numpy
from hyperplex.geo.methane.group_stats import GroupStats
from hyperplex.geo.methane.linalg import group_shrinkage, solve
from hyperplex.geo.methane.options import FilterOptions
from hyperplex.geo.methane.run_setup import setup
from hyperplex.geo.methane.stats_capture import CapturedStats, subset_stats
from hyperplex.geo.methane.target import TARGET_SCALING

__all__ = ["BackgroundFilter", "background_filter"]


@dataclass(frozen=True)
class BackgroundFilter:
    """Per detector column: mean, weights and precision of the plume-free matched filter.

    Attributes:
        mean: ``(W, B)`` mean spectra, float64; 0 in bands the filters leave out (constant ones).
        weights: ``(W, B)`` filter weights, ppm·m per radiance unit; 0 in left-out bands.
        precision: ``(W,)`` ``1 / sigma^2`` of the estimate at R = 1, ppm·m^-2; NaN without statistics.
    """

    mean: np.ndarray
    weights: np.ndarray
    precision: np.ndarray

    def enhancement(self, spectra: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """``alpha_i`` (ppm·m) of pixels ``spectra`` ``(N, B)`` in detector ``columns`` ``(N,)``; NaN if invalid."""
        d = spectra.astype(np.float64) - self.mean[columns]
        unit = self.mean[columns] / (self.mean[columns] ** 2).sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            return ((self.weights[columns] * d).sum(axis=1) / (1.0 + (unit * d).sum(axis=1))).astype(np.float32)

    def sigma(self, cube: np.ndarray) -> np.ndarray:
        """``1 / (R sqrt(precision))`` per pixel of ``cube`` ``(B, H, W)``, ppm·m; NaN where undefined."""
        unit = (self.mean / (self.mean * self.mean).sum(axis=1, keepdims=True)).astype(np.float32)  # (W, B)
        albedo = np.einsum("bhw,wb->hw", cube, unit)
        ok = np.isfinite(self.precision) & (self.precision > 0)
        scale = np.where(ok, 1.0 / np.sqrt(np.abs(self.precision)), np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            sigma = scale.astype(np.float32)[None, :] / albedo
        sigma[~(albedo > 0) | ~np.isfinite(sigma)] = np.nan
        return sigma


def background_filter(
    cube: np.ndarray,
    template: np.ndarray,
    background: np.ndarray,
    *,
    shrinkage: float = 1e-4,
    captured: list[CapturedStats] | None = None,
) -> BackgroundFilter:
    """The plume-free filter of every detector column of ``cube`` (see the module's docstring).

    Args:
        cube: Filter bands, ``(B, H, W)`` float32, NaN where invalid.
        template: Unit CH4 absorption of the bands (x 1e5), ``(B,)``.
        background: Pixels allowed in the statistics (valid, not plume, not masked), ``(H, W)`` bool.
        shrinkage: Covariance shrinkage towards the diagonal (keeps short columns solvable).
        captured: Column statistics the filter run published over this ``cube``
            (:func:`~hyperplex.geo.methane.stats_capture.capture_column_stats`): when one covers every
            background pixel, its sums are downdated by the other pixels instead of a pass over the cube.

    Returns:
        The filter.
    """
    usable = background & np.isfinite(cube.sum(axis=0))  # NaN or inf in any band (a sum reads the cube once)
    options = FilterOptions(stats_mask=~usable, window=None, fill_value=None, group="column")
    run = setup(cube, None, None, options, template=template)
    stats = subset_stats(captured or [], run.prepared, usable)
    if stats is None:  # a pass of its own (torch)
        from hyperplex.geo.methane.stats import accumulate

        stats = accumulate(run.prepared, run.grouping, run.device)
    template = like(stats.count, np.asarray(run.prepared.template, dtype=np.float64))
    mean, weights, precision = _weights(stats, template, shrinkage)
    n_bands = run.prepared.n_bands
    short = stats.count <= n_bands
    if short.any() and stats.count.sum() > n_bands:
        pooled = _weights(stats.merged(), template, shrinkage)
        mean[short], weights[short], precision[short] = (v[0] for v in pooled)
    elif short.any():
        precision[short] = float("nan")
    kept = np.arange(cube.shape[0])[run.prepared.bands]
    return BackgroundFilter(*(_full(to_numpy(v), kept, cube.shape[0]) for v in (mean, weights)),
                            to_numpy(precision))  # fmt: skip


def _weights(stats: GroupStats, template: Any, shrinkage: float) -> tuple[Any, ...]:
    """Mean (G, B), weights (G, B) and precision (G,) per group of ``stats``."""
    mean, cov = stats.mean, stats.covariance(ddof=1)
    t = template * mean
    with warnings.catch_warnings():  # short columns take the scene's statistics (background_filter)
        warnings.simplefilter("ignore", RuntimeWarning)
        alpha = group_shrinkage(stats.count, mean.shape[1], float(shrinkage), "plume-free filter")
        cit, _ = solve(cov, t, alpha, "plume-free filter", stats.count)
    w = cit / (t * cit).sum(-1)[:, None] * TARGET_SCALING
    with np.errstate(divide="ignore"):  # a zero variance gives an infinite precision, as in torch
        return mean, w, 1.0 / einsum("gi,gij,gj->g", w, cov, w)


def _full(values: np.ndarray, kept: np.ndarray, n_bands: int) -> np.ndarray:
    """``(G, B')`` values of the kept bands as ``(G, B)``, 0 in the others."""
    out = np.zeros((values.shape[0], n_bands))
    out[:, kept] = values
    return out
