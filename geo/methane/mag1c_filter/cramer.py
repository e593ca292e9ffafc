"""Batched 3 x 3 solves by Cramer's rule, shared by the torch engine and the compiled kernels.

The Woodbury update of C^-1 t needs one 3 x 3 solve per group and iteration. LAPACK's batched solvers loop
slowly over millions of tiny systems, so the systems are solved by determinants. The same code serves both
engines: entries are indexed ``a[i, j]`` and ``b[i]``, which are scalars in a compiled kernel (a (3, 3) array)
and (G,) tensors in torch (a (3, 3, G) view, see :func:`solve3_batched`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hyperplex.geo.methane.mag1c_filter.jit import jitable

if TYPE_CHECKING:
    import torch

__all__ = ["det3", "solve3", "solve3_batched"]


@jitable
def det3(c0: Any, c1: Any, c2: Any) -> Any:
    """Determinant of the 3 x 3 matrix whose columns are ``c0``, ``c1``, ``c2`` (each indexed ``[i]``)."""
    return (
        c0[0] * (c1[1] * c2[2] - c2[1] * c1[2])
        - c1[0] * (c0[1] * c2[2] - c2[1] * c0[2])
        + c2[0] * (c0[1] * c1[2] - c1[1] * c0[2])
    )


@jitable
def solve3(a: Any, b: Any) -> tuple[Any, Any, Any]:
    """The solution ``(z0, z1, z2)`` of ``a z = b``: z_j = det(a with column j replaced by b) / det(a)."""
    c0, c1, c2 = a[:, 0], a[:, 1], a[:, 2]
    det = det3(c0, c1, c2)
    return det3(b, c1, c2) / det, det3(c0, b, c2) / det, det3(c0, c1, b) / det


def solve3_batched(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Solve the (G, 3, 3) systems ``a z = b`` for (G, 3) right-hand sides; returns (G, 3)."""
    import torch

    return torch.stack(solve3(a.permute(1, 2, 0), b.T), dim=1)
