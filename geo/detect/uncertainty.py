"""Per-pixel 1-sigma uncertainty of the enhancement, and the IME uncertainty of a plume.

For the albedo-corrected matched filter that the mass estimate uses (:mod:`hyperplex.geo.detect.ime`),

    alpha_i = (x_i - mu)^T C^-1 t / (R_i t^T C^-1 t),  t = k * mu,  R_i = x_i . mu / mu . mu,

with ``k`` the unit absorption per ppm·m, the noise variance of ``alpha_i`` is ``1 / (R_i^2 t^T C^-1 t)``
when ``C`` is the background covariance. So the 1-sigma uncertainty in ppm·m is
``1 / (R_i sqrt(t^T C^-1 t))``, with ``mu`` and ``C`` from the plume-free pixels of the same detector column, as EMIT's
CH4UNCERT product (column-wise statistics of the operational matched filter). Sums of independent
pixels add in quadrature, so the IME's 1 sigma is ``factor * sqrt(sum (sigma_i a_i)^2)``.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from hyperplex.geo.geodesy import CH4_KG_PER_PPMM_M2
from hyperplex.geo.methane.linalg import group_shrinkage, solve
from hyperplex.geo.methane.options import FilterOptions
from hyperplex.geo.methane.runner import setup
from hyperplex.geo.methane.stats import GroupStats, accumulate
from hyperplex.geo.methane.target import TARGET_SCALING

__all__ = ["enhancement_sigma", "filter_precision", "ime_sigma_kg"]


def enhancement_sigma(
    cube: np.ndarray, template: np.ndarray, background: np.ndarray, *, shrinkage: float = 1e-4
) -> np.ndarray:
    """1-sigma noise of the matched-filter enhancement per pixel, ppm·m; NaN where invalid.

    Columns with no more background pixels than bands use the scene-wide statistics. One streamed pass
    of grouped statistics per grouping (the filters' own), then one product per pixel.

    Args:
        cube: Filter bands, ``(B, H, W)`` float32, NaN where invalid.
        template: Unit CH4 absorption of the bands (x 1e5), ``(B,)``.
        background: Pixels allowed in the statistics (valid, not plume, not masked), ``(H, W)`` bool.
        shrinkage: Covariance shrinkage towards the diagonal (as the IME's filter).

    Returns:
        ``(H, W)`` float32.
    """
    usable = background & np.isfinite(cube).all(axis=0)
    mean, precision = filter_precision(cube, template, usable, shrinkage)
    return _pixel_sigma(cube, mean, precision)


def filter_precision(
    cube: np.ndarray, template: np.ndarray, background: np.ndarray, shrinkage: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per detector column: mean spectrum and ``1 / sigma^2`` (ppm·m^-2) of the filter's estimate at R = 1.

    Statistics of each column's ``background`` pixels (one streamed pass); columns with no more of them
    than bands take the scene's (the columns' statistics pooled). The filter's weights
    ``w = C_s^-1 t / (t^T C_s^-1 t)`` use the shrunk covariance ``C_s``; the noise variance of ``w^T x``
    is ``w^T C w`` with the sample covariance ``C`` (``1 / t^T C^-1 t`` without shrinkage; shrinkage
    makes the filter slightly suboptimal, and this form stays exact).

    Args:
        cube: ``(B, H, W)`` float32.
        template: Unit CH4 absorption (x 1e5), ``(B,)``.
        background: Pixels in the statistics, ``(H, W)`` bool.
        shrinkage: Covariance shrinkage towards the diagonal.

    Returns:
        ``(mean (W, B), precision (W,))`` float64; NaN where there are no statistics; the mean is 0 in
        bands the filters leave out (constant over the data, see
        :func:`hyperplex.geo.methane.inputs.without_constant_bands`).
    """
    options = FilterOptions(stats_mask=~background, window=None, fill_value=None, group="column")
    run = setup(cube, None, None, options, template=template)
    stats = accumulate(run.prepared, run.grouping, run.device)
    mean, precision = _precision(stats, run.template, shrinkage)
    short = stats.count <= run.prepared.n_bands
    if short.any() and stats.count.sum() > run.prepared.n_bands:
        scene_mean, scene_precision = _precision(stats.merged(), run.template, shrinkage)
        mean[short], precision[short] = scene_mean[0], scene_precision[0]
    elif short.any():
        precision[short] = float("nan")
    full = np.zeros((mean.shape[0], cube.shape[0]))  # bands the filters leave out (constant ones) weigh 0
    full[:, np.arange(cube.shape[0])[run.prepared.bands]] = mean.cpu().numpy()
    return full, precision.cpu().numpy()


def _precision(stats: GroupStats, template: torch.Tensor, shrinkage: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (G, B) and the filter's precision (G,) per group of ``stats`` (see :func:`filter_precision`)."""
    mean, cov = stats.mean, stats.covariance(ddof=1)
    t = template * mean
    with warnings.catch_warnings():  # short columns take the scene's statistics (filter_precision)
        warnings.simplefilter("ignore", RuntimeWarning)
        alpha = group_shrinkage(stats.count, mean.shape[1], float(shrinkage), "uncertainty")
        cit, _ = solve(cov, t, alpha, "uncertainty", stats.count)
    w = cit / (t * cit).sum(-1, keepdim=True) * TARGET_SCALING  # ppm·m per unit of radiance
    return mean, 1.0 / torch.einsum("gi,gij,gj->g", w, cov, w)


def _pixel_sigma(cube: np.ndarray, mean: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """``1 / (R sqrt(precision))`` per pixel, R = x.mu / mu.mu of its column; NaN where undefined."""
    unit = (mean / (mean * mean).sum(axis=1, keepdims=True)).astype(np.float32)  # (W, B)
    albedo = np.einsum("bhw,wb->hw", cube, unit)
    scale = np.where(np.isfinite(precision) & (precision > 0), 1.0 / np.sqrt(np.abs(precision)), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        sigma = scale.astype(np.float32)[None, :] / albedo
    sigma[~(albedo > 0) | ~np.isfinite(sigma)] = np.nan
    return sigma


def ime_sigma_kg(sigma_ppmm: np.ndarray, area_m2: np.ndarray | float) -> float:
    """1-sigma uncertainty (kg) of an IME over pixels with independent 1-sigma errors ``sigma_ppmm``.

    Pixels without an uncertainty (NaN) are left out.
    """
    s = np.asarray(sigma_ppmm, np.float64) * np.asarray(area_m2, np.float64)
    return float(np.sqrt(np.nansum(s**2)) * CH4_KG_PER_PPMM_M2)
