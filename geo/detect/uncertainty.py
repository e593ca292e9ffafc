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

import numpy as np

from hyperplex.geo.geodesy import CH4_KG_PER_PPMM_M2

__all__ = ["enhancement_sigma", "ime_sigma_kg"]

_COLUMNS_PER_BLOCK = 64


def enhancement_sigma(
    cube: np.ndarray, template: np.ndarray, background: np.ndarray, *, shrinkage: float = 1e-4
) -> np.ndarray:
    """1-sigma noise of the matched-filter enhancement per pixel, ppm·m; NaN where invalid.

    Columns with no more background pixels than bands use the scene-wide statistics.

    Args:
        cube: Filter bands, ``(B, H, W)`` float32, NaN where invalid.
        template: Unit CH4 absorption of the bands (x 1e5), ``(B,)``.
        background: Pixels allowed in the statistics (valid, not plume, not masked), ``(H, W)`` bool.
        shrinkage: Covariance shrinkage towards the diagonal (as the IME's filter).

    Returns:
        ``(H, W)`` float32.
    """
    bands, _, width = cube.shape
    k = np.asarray(template, np.float64) / 1e5
    usable = background & np.isfinite(cube).all(axis=0)
    out = np.full(usable.shape, np.nan, dtype=np.float32)
    pooled = _scene_stats(cube, k, usable, shrinkage)
    for c0 in range(0, width, _COLUMNS_PER_BLOCK):
        cols = slice(c0, min(c0 + _COLUMNS_PER_BLOCK, width))
        out[:, cols] = _block_sigma(cube[:, :, cols].astype(np.float64), k, usable[:, cols], shrinkage, pooled, bands)
    return out


def _stats(x: np.ndarray, k: np.ndarray, shrinkage: float) -> tuple[np.ndarray, float]:
    """Mean (B,) of pixels ``x`` (N, B) and ``1 / sigma^2`` of the filter's estimate at albedo R = 1.

    The filter's weights ``w = C_s^-1 t / (t^T C_s^-1 t)`` use the shrunk covariance ``C_s``; the noise
    variance of ``w^T x`` is ``w^T C w`` with the sample covariance ``C`` (``1 / t^T C^-1 t`` without
    shrinkage; shrinkage makes the filter slightly suboptimal, and this form stays exact).
    """
    mu = x.mean(axis=0)
    d = x - mu
    cov = d.T @ d / max(len(x) - 1, 1)
    shrunk = (1 - shrinkage) * cov + shrinkage * np.diag(np.diag(cov))
    t = k * mu
    w = np.linalg.solve(shrunk, t)
    w /= t @ w
    return mu, float(1.0 / (w @ cov @ w))


def _scene_stats(cube: np.ndarray, k: np.ndarray, usable: np.ndarray, shrinkage: float) -> tuple[np.ndarray, float]:
    """Scene-wide statistics (fallback for columns with too few background pixels); NaN if too few."""
    x = cube[:, usable].T.astype(np.float64)
    if len(x) <= cube.shape[0]:
        return np.full(cube.shape[0], np.nan), np.nan
    return _stats(x, k, shrinkage)


def _block_sigma(block: np.ndarray, k: np.ndarray, usable: np.ndarray, shrinkage: float,
                 pooled: tuple[np.ndarray, float], bands: int) -> np.ndarray:  # fmt: skip
    """Sigma for a block of columns ``(B, H, w)``, one set of statistics per column."""
    out = np.full(block.shape[1:], np.nan, dtype=np.float32)
    for j in range(block.shape[2]):
        col = block[:, :, j].T  # (H, B)
        own = usable[:, j]
        mu, precision = _stats(col[own], k, shrinkage) if own.sum() > bands else pooled
        if not np.isfinite(precision) or precision <= 0:
            continue
        albedo = col @ mu / (mu @ mu)
        with np.errstate(invalid="ignore", divide="ignore"):
            sigma = 1.0 / (albedo * np.sqrt(precision))
        out[:, j] = np.where(np.isfinite(col).all(axis=1) & (albedo > 0), sigma, np.nan)
    return out


def ime_sigma_kg(sigma_ppmm: np.ndarray, area_m2: np.ndarray | float) -> float:
    """1-sigma uncertainty (kg) of an IME over pixels with independent 1-sigma errors ``sigma_ppmm``.

    Pixels without an uncertainty (NaN) are left out.
    """
    s = np.asarray(sigma_ppmm, np.float64) * np.asarray(area_m2, np.float64)
    return float(np.sqrt(np.nansum(s**2)) * CH4_KG_PER_PPMM_M2)
