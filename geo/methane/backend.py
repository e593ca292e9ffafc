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

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from hyperplex.common.threads import compute_threads

__all__ = [
    "cholesky_ex",
    "cholesky_inverse",
    "cholesky_solve",
    "einsum",
    "eye_like",
    "in_threads",
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
    return _substitute(_substitute(np.asarray(rhs, dtype=np.float64), factor, lower=True), factor, lower=False)


def _substitute(rhs: np.ndarray, factor: np.ndarray, *, lower: bool) -> np.ndarray:
    """``L^-1 rhs`` (``lower``) or ``L^-T rhs`` for (G, C, K) right-hand sides, all groups at once.

    A loop over the C rows, each a (G, 1, i) x (G, i, K) product: about 3x faster than numpy's batched
    ``solve`` (an LU factorisation of every triangular matrix). A NaN factor (an unsolvable group) gives NaN.
    """
    n = factor.shape[-1]
    out = np.empty(rhs.shape)
    diagonal = factor[:, range(n), range(n)][:, :, None]
    upper = factor.mT
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(n) if lower else range(n - 1, -1, -1):
            known = slice(0, i) if lower else slice(i + 1, n)  # the rows already solved
            done = (factor if lower else upper)[:, i : i + 1, known] @ out[:, known]
            out[:, i] = (rhs[:, i] - done[:, 0]) / diagonal[:, i]
    return out


def cholesky_inverse(factor: Any) -> Any:
    """``(L L^T)^-1`` of (G, C, C) factors ``L``."""
    if is_tensor(factor):
        import torch

        return torch.cholesky_inverse(factor)
    return in_threads(_inverse_from_factor, factor)


def _inverse_from_factor(factor: np.ndarray) -> np.ndarray:
    inverse = np.linalg.inv(factor)
    return inverse.mT @ inverse


def in_threads(function: Callable[[np.ndarray], np.ndarray], batch: np.ndarray) -> np.ndarray:
    """``function`` of a (G, ...) numpy batch, run on :func:`compute_threads` slices of it in parallel threads.

    numpy's batched LAPACK and matrix products release the GIL, so a large batch of small factorisations
    runs about 1.7x faster on two cores. ``function`` must map each group independently; its first
    exception (e.g. a ``LinAlgError``) is raised.
    """
    parts = min(compute_threads(), len(batch) // _MIN_GROUPS_PER_THREAD)
    if parts < 2:
        return function(batch)
    bounds = np.linspace(0, len(batch), parts + 1).astype(int)
    with ThreadPoolExecutor(max_workers=parts, thread_name_prefix="linalg") as pool:
        pieces = list(pool.map(function, (batch[a:b] for a, b in itertools.pairwise(bounds))))
    return np.concatenate(pieces)


#: Fewer groups than this per thread are not worth a thread.
_MIN_GROUPS_PER_THREAD = 64
