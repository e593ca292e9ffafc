"""The few array operations spelled differently in numpy and torch, for code that serves both.

The statistics of the filters (:class:`~hyperplex.geo.methane.group_stats.GroupStats`, :mod:`.linalg`, Mag1c's
filter vectors, the detection pipeline's plume-free filter) are small per-group arrays. The torch engines keep
them as tensors on their device; the compiled CPU path of Mag1c keeps them as numpy arrays, so that a
command running it never imports torch (about 2.5 s of start-up). Both run the same code, which writes
what numpy and torch spell alike (operators, ``.sum``, ``.clip``, ``.mT``, indexing) directly and the rest
through these functions. A value counts as a tensor when its type comes from the torch package, so torch
is only imported where a tensor already exists.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "cholesky_ex",
    "cholesky_inverse",
    "cholesky_solve",
    "einsum",
    "eye_like",
    "is_tensor",
    "like",
    "to_numpy",
    "where",
]


def is_tensor(value: Any) -> bool:
    """Whether ``value`` is a torch tensor (checked without importing torch)."""
    return type(value).__module__.partition(".")[0] == "torch"


def to_numpy(value: Any) -> np.ndarray:
    """``value`` as a numpy array (a tensor is copied to the host)."""
    return value.detach().cpu().numpy() if is_tensor(value) else np.asarray(value)


def like(reference: Any, values: np.ndarray) -> Any:
    """The numpy ``values`` as the kind of ``reference``: a tensor on its device, or the array itself."""
    if not is_tensor(reference):
        return values
    import torch

    return torch.from_numpy(np.ascontiguousarray(values)).to(reference.device)


def eye_like(reference: Any, n: int) -> Any:
    """The (n, n) float64 identity, of the kind (and device) of ``reference``."""
    return like(reference, np.eye(n))


def where(condition: Any, a: Any, b: Any) -> Any:
    """Elementwise ``a`` where ``condition``, else ``b`` (numpy or torch, as the condition)."""
    if is_tensor(condition):
        import torch

        return torch.where(condition, a, b)
    return np.where(condition, a, b)


def einsum(spec: str, *operands: Any) -> Any:
    """``einsum`` of numpy arrays or of tensors."""
    if is_tensor(operands[0]):
        import torch

        return torch.einsum(spec, *operands)
    return np.einsum(spec, *operands)


def cholesky_ex(matrix: Any) -> tuple[Any, Any]:
    """Lower Cholesky factors of a (G, C, C) batch and a (G,) bool marking the matrices that failed.

    A failed matrix's factor is unspecified (callers replace it).
    """
    if is_tensor(matrix):
        import torch

        factor, info = torch.linalg.cholesky_ex(matrix)
        return factor, info > 0
    try:
        return np.linalg.cholesky(matrix), np.zeros(len(matrix), dtype=bool)
    except np.linalg.LinAlgError:
        return _cholesky_each(matrix)


def _cholesky_each(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Matrix by matrix, after a batched factorisation failed on some."""
    factor, failed = np.zeros_like(matrix), np.zeros(len(matrix), dtype=bool)
    for g, m in enumerate(matrix):
        try:
            factor[g] = np.linalg.cholesky(m)
        except np.linalg.LinAlgError:
            failed[g] = True
    return factor, failed


def cholesky_solve(rhs: Any, factor: Any) -> Any:
    """Solve ``L L^T x = rhs`` for (G, C, K) right-hand sides, given the (G, C, C) factors ``L``."""
    if is_tensor(factor):
        import torch

        return torch.cholesky_solve(rhs, factor)
    return np.linalg.solve(factor.mT, np.linalg.solve(factor, rhs))


def cholesky_inverse(factor: Any) -> Any:
    """``(L L^T)^-1`` of (G, C, C) factors ``L``."""
    if is_tensor(factor):
        import torch

        return torch.cholesky_inverse(factor)
    inverse = np.linalg.inv(factor)
    return inverse.mT @ inverse
