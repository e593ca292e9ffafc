"""Batched covariance regularisation and Cholesky solves, one system per statistics group.

Numpy arrays or torch tensors alike (:mod:`.backend`): the compiled CPU path of Mag1c runs without torch.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from hyperplex.geo.methane.backend import cholesky_ex, cholesky_solve, eye_like, is_tensor, where

__all__ = ["FALLBACK_SHRINKAGE", "batched_inverse", "group_shrinkage", "shrink", "solve", "warn_singular"]

#: Shrinkage towards the diagonal used for groups with fewer valid pixels than bands (or a singular covariance).
FALLBACK_SHRINKAGE = 0.1


def group_shrinkage(count: Any, n_bands: int, shrinkage: float, what: str) -> Any:
    """Per-group shrinkage: ``shrinkage``, raised to :data:`FALLBACK_SHRINKAGE` where a group is too small.

    Args:
        count: Valid pixels per group (G,).
        n_bands: Number of bands.
        shrinkage: Requested shrinkage in [0, 1].
        what: Method name for the warning.

    Returns:
        Shrinkage per group, float64 (G,).
    """
    alpha = count * 0.0 + float(shrinkage)  # float64, of count's kind and device
    small = (count > 0) & (count < n_bands + 1)
    if bool(small.any()) and shrinkage < FALLBACK_SHRINKAGE:
        warnings.warn(
            f"{what}: {int(small.sum())} statistics group(s) have fewer valid pixels than bands ({n_bands}); "
            f"their covariance is shrunk towards its diagonal by {FALLBACK_SHRINKAGE} (use larger groups or fewer "
            "bands to avoid this).",
            RuntimeWarning,
            stacklevel=3,
        )
        alpha = where(small, FALLBACK_SHRINKAGE, alpha)
    return alpha


def shrink(cov: Any, alpha: Any) -> Any:
    """``(1 - alpha) * C + alpha * diag(C)`` per group (mag1c's lerp)."""
    if not bool((alpha != 0).any()):
        return cov
    out = cov * (1.0 - alpha)[:, None, None]
    diagonal = list(range(cov.shape[-1]))
    out[:, diagonal, diagonal] = cov[:, diagonal, diagonal]
    return out


def solve(cov: Any, rhs: Any, alpha: Any, what: str, count: Any = None) -> tuple[Any, Any]:
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
        matrix = where((count == 0)[:, None, None], eye_like(cov, cov.shape[-1]), matrix)
    factor, bad = cholesky_ex(matrix)
    if bool(bad.any()):
        factor = _repair(cov, factor, bad, what)
    out = cholesky_solve(b, factor)
    return (out[:, :, 0] if vector else out), factor


def _repair(cov: Any, factor: Any, bad: Any, what: str) -> Any:
    """The ``bad`` groups' factors again, with :data:`FALLBACK_SHRINKAGE` and a small ridge (NaN if still bad)."""
    sub = shrink(cov[bad], cov[bad][:, 0, 0] * 0.0 + FALLBACK_SHRINKAGE)
    diagonal = list(range(cov.shape[-1]))
    scale = sub[:, diagonal, diagonal].mean(-1).clip(min=np.finfo(np.float64).tiny)
    fixed, failed = cholesky_ex(sub + 1e-9 * scale[:, None, None] * eye_like(cov, cov.shape[-1]))
    fixed[failed] = float("nan")
    warn_singular(what, int(bad.sum()), int(failed.sum()), stacklevel=5)
    factor = factor.clone() if is_tensor(factor) else factor.copy()
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


def batched_inverse(matrix: Any) -> Any:
    """Inverse of a batch of small matrices (numpy's batched LAPACK on CPU: torch's CPU path loops slowly)."""
    if not is_tensor(matrix):
        return np.linalg.inv(matrix)
    import torch

    if matrix.device.type == "cpu":
        return torch.from_numpy(np.linalg.inv(matrix.numpy()))
    return torch.linalg.inv(matrix)
