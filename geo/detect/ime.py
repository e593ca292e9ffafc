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
_BATCH_COLUMNS = 128  # columns whose statistics are computed together (bounds memory)
_MAX_POOLED = 200_000  # background pixels sampled for scene-wide statistics


def _stats(data: np.ndarray, weight: np.ndarray, shrinkage: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-group mean (n, B), shrunk covariance (n, B, B) and pixel count (n,) from ``data`` (n, H, B), 0/1 weights."""
    count = weight.sum(axis=1)
    denom = np.maximum(count, 1.0)[:, None]
    mean = np.einsum("nh,nhb->nb", weight, data) / denom
    centred = (data - mean[:, None, :]) * np.sqrt(weight)[:, :, None]
    cov = np.matmul(centred.transpose(0, 2, 1), centred) / np.maximum(denom[:, :, None] - 1.0, 1.0)
    diag = np.einsum("nbb->nb", cov)
    cov *= 1.0 - shrinkage
    cov[:, np.arange(cov.shape[1]), np.arange(cov.shape[1])] += shrinkage * diag
    return mean, cov, count


def _pooled(cube: np.ndarray, background: np.ndarray, shrinkage: float) -> tuple[np.ndarray, np.ndarray]:
    """Scene-wide mean and covariance from a strided sample of background pixels, shapes (1, B), (1, B, B)."""
    usable = background & np.isfinite(cube).all(axis=0)
    rows, cols = np.nonzero(usable)
    step = max(1, rows.size // _MAX_POOLED)
    data = cube[:, rows[::step], cols[::step]].T[None].astype(np.float64)
    mean, cov, _ = _stats(data, np.ones(data.shape[:2]), shrinkage)
    return mean, cov


def _column_batch(cube: np.ndarray, background: np.ndarray, cols: np.ndarray, shrinkage: float, pooled: tuple):
    """Statistics of a batch of detector columns; columns with too few pixels take the pooled ones."""
    data = np.moveaxis(cube[:, :, cols], (0, 2), (2, 0)).astype(np.float64)  # (n, H, B)
    weight = (background[:, cols].T & np.isfinite(data).all(axis=2)).astype(np.float64)
    np.nan_to_num(data, copy=False)
    mean, cov, count = _stats(data, weight, shrinkage)
    thin = count <= data.shape[2]  # fewer pixels than bands: not estimable per column
    mean[thin], cov[thin] = pooled[0][0], pooled[1][0]
    return mean, cov


def _apply(cube: np.ndarray, region: np.ndarray, cols: np.ndarray, mean: np.ndarray, cov: np.ndarray,
           template: np.ndarray, out: np.ndarray) -> None:  # fmt: skip
    """Write the enhancement of the ``region`` pixels in ``cols`` (one statistics group per column, or one)."""
    target = template[None, :] * mean
    cit = np.linalg.solve(cov, target[:, :, None])[..., 0]
    norm = np.einsum("nb,nb->n", target, cit)
    rows, pix_cols = np.nonzero(region[:, cols])
    g = pix_cols if mean.shape[0] == cols.size else np.zeros_like(pix_cols)
    x = cube[:, rows, cols[pix_cols]].T.astype(np.float64)  # (P, B)
    mu = mean[g]
    albedo = np.einsum("pb,pb->p", x, mu) / np.einsum("pb,pb->p", mu, mu)
    out[rows, cols[pix_cols]] = np.einsum("pb,pb->p", x - mu, cit[g]) / (albedo * norm[g]) * _SCALE


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

    Columns with fewer plume-free pixels than bands use scene-wide statistics instead.

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
    pooled = _pooled(cube, background, shrinkage)
    if group != "column":
        _apply(cube, region, cols, pooled[0], pooled[1], template, out)
        return out
    for start in range(0, cols.size, _BATCH_COLUMNS):
        batch = cols[start : start + _BATCH_COLUMNS]
        mean, cov = _column_batch(cube, background, batch, shrinkage, pooled)
        _apply(cube, region, batch, mean, cov, template, out)
    return out
