"""Unbiased per-pixel enhancement for mass estimates (integrated mass enhancement, IME).

Detection maps are biased for mass: Mag1c's sparsity prior shrinks a plume's faint tails to zero and
a matched filter whose statistics include the plume underestimates it (HyperGas issue #60). For the
IME, plume pixels are therefore re-estimated with an albedo-corrected matched filter whose mean and
covariance come from the same detector column *with the plumes excluded*:

    alpha_i = (x_i - mu)^T C^-1 t / (R_i t^T C^-1 t),  t = k * mu,  R_i = x_i . mu / mu . mu

(Mag1c's first iteration without sparsity or clipping, Foote et al. 2020), in ppm·m. Its noise is zero
mean, so sums over generous plume regions are unbiased.
"""

from __future__ import annotations

import numpy as np

__all__ = ["debiased_enhancement"]

_SCALE = 1e5  # the target spectrum is per 1e5 ppm·m


def _column_stats(data: np.ndarray, weight: np.ndarray, shrinkage: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean (n, B) and shrunk covariance (n, B, B) from ``data`` (n, H, B) with 0/1 weights (n, H)."""
    count = np.maximum(weight.sum(axis=1), 1.0)[:, None]
    mean = np.einsum("nh,nhb->nb", weight, data) / count
    centred = (data - mean[:, None, :]) * np.sqrt(weight)[:, :, None]
    cov = np.matmul(centred.transpose(0, 2, 1), centred) / np.maximum(count[:, :, None] - 1.0, 1.0)
    diag = np.einsum("nbb->nb", cov)
    cov = (1.0 - shrinkage) * cov
    cov[:, np.arange(cov.shape[1]), np.arange(cov.shape[1])] += shrinkage * diag
    return mean, cov


def debiased_enhancement(
    cube: np.ndarray,
    template: np.ndarray,
    region: np.ndarray,
    background: np.ndarray,
    *,
    group: str = "column",
    shrinkage: float = 1e-4,
) -> np.ndarray:
    """Enhancement (ppm·m) of the ``region`` pixels from plume-free statistics; NaN elsewhere.

    Args:
        cube: Filter bands, ``(B, H, W)`` float32, NaN where invalid.
        template: Unit CH4 absorption of the bands (x 1e5), ``(B,)``.
        region: Pixels to estimate, ``(H, W)`` bool.
        background: Pixels allowed in the statistics (valid, not plume, not masked), ``(H, W)`` bool.
        group: 'column' (statistics per detector column) or 'tile' (one set for the scene).
        shrinkage: Covariance shrinkage towards the diagonal (keeps short columns solvable).

    Returns:
        ``(H, W)`` float32.
    """
    out = np.full(region.shape, np.nan, dtype=np.float32)
    cols = np.flatnonzero(region.any(axis=0))
    if cols.size == 0:
        return out
    if group == "column":
        data = np.moveaxis(cube[:, :, cols], (0, 2), (2, 0)).astype(np.float64)  # (n, H, B)
        weight = (background[:, cols].T & np.isfinite(data).all(axis=2)).astype(np.float64)
    else:
        bg = background & np.isfinite(cube).all(axis=0)
        data = cube[:, bg].T[None].astype(np.float64)  # (1, N, B)
        weight = np.ones(data.shape[:2])
    data = np.nan_to_num(data)
    mean, cov = _column_stats(data, weight, shrinkage)
    target = template[None, :] * mean
    cit = np.linalg.solve(cov, target[:, :, None])[..., 0]  # (n, B)
    norm = np.einsum("nb,nb->n", target, cit)
    rows, pix_cols = np.nonzero(region)
    g = np.searchsorted(cols, pix_cols) if group == "column" else np.zeros(rows.size, dtype=int)
    x = cube[:, rows, pix_cols].T.astype(np.float64)  # (P, B)
    mu = mean[g]
    albedo = np.einsum("pb,pb->p", x, mu) / np.einsum("pb,pb->p", mu, mu)
    out[rows, pix_cols] = np.einsum("pb,pb->p", x - mu, cit[g]) / (albedo * norm[g]) * _SCALE
    return out
