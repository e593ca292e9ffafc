"""Batched covariance regularisation and Cholesky solves, one system per statistics group."""

from __future__ import annotations

import warnings

import numpy as np
import torch

__all__ = ["FALLBACK_SHRINKAGE", "batched_inverse", "group_shrinkage", "shrink", "solve", "warn_singular"]

#: Shrinkage towards the diagonal used for groups with fewer valid pixels than bands (or a singular covariance).
FALLBACK_SHRINKAGE = 0.1


def group_shrinkage(count: torch.Tensor, n_bands: int, shrinkage: float, what: str) -> torch.Tensor:
    """Per-group shrinkage: ``shrinkage``, raised to :data:`FALLBACK_SHRINKAGE` where a group is too small.

    Args:
        count: Valid pixels per group (G,).
        n_bands: Number of bands.
        shrinkage: Requested shrinkage in [0, 1].
        what: Method name for the warning.

    Returns:
        Shrinkage per group, float64 (G,).
    """
    alpha = torch.full_like(count, float(shrinkage), dtype=torch.float64)
    small = (count > 0) & (count < n_bands + 1)
    if bool(small.any()) and shrinkage < FALLBACK_SHRINKAGE:
        warnings.warn(
            f"{what}: {int(small.sum())} statistics group(s) have fewer valid pixels than bands ({n_bands}); "
            f"their covariance is shrunk towards its diagonal by {FALLBACK_SHRINKAGE} (use larger groups or fewer "
            "bands to avoid this).",
            RuntimeWarning,
            stacklevel=3,
        )
        alpha = torch.where(small, torch.full_like(alpha, FALLBACK_SHRINKAGE), alpha)
    return alpha


def shrink(cov: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """``(1 - alpha) * C + alpha * diag(C)`` per group (mag1c's lerp)."""
    if not bool((alpha != 0).any()):
        return cov
    out = cov * (1.0 - alpha)[:, None, None]
    torch.diagonal(out, dim1=-2, dim2=-1).copy_(torch.diagonal(cov, dim1=-2, dim2=-1))
    return out


def solve(
    cov: torch.Tensor, rhs: torch.Tensor, alpha: torch.Tensor, what: str, count: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Solve ``shrink(C, alpha) z = rhs`` for every group with one batched Cholesky.

    Groups whose matrix is not positive definite are retried with :data:`FALLBACK_SHRINKAGE` and a small
    ridge (with a warning); groups that still fail (no valid pixel) get NaN.

    Args:
        cov: Covariances (G, C, C), float64.
        rhs: Right-hand sides (G, C, K) or (G, C).
        alpha: Shrinkage per group (G,).
        what: Method name for warnings.
        count: Valid pixels per group; groups without any are solved with an identity matrix (unused).

    Returns:
        The solutions (shape of ``rhs``) and the Cholesky factors (G, C, C).
    """
    vector = rhs.ndim == 2
    b = rhs[:, :, None] if vector else rhs
    matrix = shrink(cov, alpha)
    if count is not None and bool((count == 0).any()):
        eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
        matrix = torch.where((count == 0)[:, None, None], eye, matrix)
    factor, info = torch.linalg.cholesky_ex(matrix)
    bad = info > 0
    if bool(bad.any()):
        factor = _repair(cov, factor, bad, what)
    out = torch.cholesky_solve(b, factor)
    return (out[:, :, 0] if vector else out), factor


def _repair(cov: torch.Tensor, factor: torch.Tensor, bad: torch.Tensor, what: str) -> torch.Tensor:
    sub = shrink(cov[bad], torch.full((int(bad.sum()),), FALLBACK_SHRINKAGE, dtype=cov.dtype, device=cov.device))
    scale = torch.diagonal(sub, dim1=-2, dim2=-1).mean(-1).clamp(min=torch.finfo(cov.dtype).tiny)
    eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
    fixed, info = torch.linalg.cholesky_ex(sub + 1e-9 * scale[:, None, None] * eye)
    fixed[info > 0] = float("nan")
    warn_singular(what, int(bad.sum()), int((info > 0).sum()), stacklevel=5)
    factor = factor.clone()
    factor[bad] = fixed
    return factor


def warn_singular(what: str, singular: int, failed: int, stacklevel: int = 4) -> None:
    """Warn that ``singular`` groups' covariances needed the fallback and ``failed`` of them could not be solved."""
    warnings.warn(
        f"{what}: the covariance of {singular} statistics group(s) is singular; shrunk towards its diagonal "
        f"by {FALLBACK_SHRINKAGE} plus a small ridge ({failed} group(s) could not be solved and come out NaN).",
        RuntimeWarning,
        stacklevel=stacklevel,
    )


def batched_inverse(matrix: torch.Tensor) -> torch.Tensor:
    """Inverse of a batch of small matrices (numpy's batched LAPACK on CPU: torch's CPU path loops slowly)."""
    if matrix.device.type == "cpu":
        return torch.from_numpy(np.linalg.inv(matrix.numpy()))
    return torch.linalg.inv(matrix)
