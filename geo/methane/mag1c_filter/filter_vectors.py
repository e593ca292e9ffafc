"""Mag1c's per-group filter vectors C^-1 t across the iterations, from one pass of sums (no re-reading).

With a_i = s R_i alpha_i, y_i = x_i - m (m a per-group reference near the mean), S = sum y_i and
G = sum y_i y_i^T over the statistics pixels (one streamed pass), the statistics of x' = x - a t_prev are

    mean(x') = m + (S - A1 t_prev) / N,   C' = G / N + U M U^T,   U = [t_prev, V, mu_y],

where A1 = sum a_i, A2 = sum a_i^2, V = sum a_i y_i (only pixels with alpha > 0 contribute) and
M = [[A2 / N, -1 / N, 0], [-1 / N, 0, 0], [0, 0, -1]]. So C'^-1 t follows by Woodbury from (G / N)^-1,
inverted once per group: ``C^-1 t = B^-1 t - B^-1 U (I + M U^T B^-1 U)^-1 M U^T B^-1 t``, a 3 x 3 solve
(:mod:`.cramer`). Groups with shrinkage, or whose G / N is singular, factorize the dense covariance instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hyperplex.geo.methane.backend import cholesky_ex, cholesky_inverse, eye_like
from hyperplex.geo.methane.group_stats import GroupStats
from hyperplex.geo.methane.linalg import group_shrinkage, solve
from hyperplex.geo.methane.mag1c_filter.cramer import solve3_batched

if TYPE_CHECKING:
    import torch

__all__ = ["FilterVectors", "LowRank"]

#: A covariance ``G / N + U M U^T`` as ``(U (G, C, 3), M (G, 3, 3))``.
LowRank = tuple[Any, Any]


class FilterVectors:
    """C^-1 t and t.C^-1 t per group, from the first pass's sums and each iteration's moments.

    Numpy arrays (the compiled engine) or tensors (the torch engine), as the statistics; :meth:`updated` and
    :meth:`woodbury` serve the torch engine only (the compiled kernels do their own updates).

    Args:
        stats: Sums of the statistics pixels (shift m, count N, S, G).
        template: Unit absorption x 1e5 (C,), float64, on the statistics' device.
        shrinkage: Requested covariance shrinkage (raised per group where a group is too small).
        what: Method name for warnings.
    """

    def __init__(self, stats: GroupStats, template: Any, shrinkage: float, what: str) -> None:
        self.stats, self.template, self.what = stats, template, what
        self.shrinkage = group_shrinkage(stats.count, stats.sum.shape[-1], shrinkage, what)

    def initial(self) -> tuple[Any, Any, Any]:
        """Mean offset mu_y (G, C), target t (G, C) and covariance (G, C, C) of the raw data."""
        n = self.stats.count.clip(min=1)[:, None]
        mu_y = self.stats.sum / n
        cov = self.stats.gram / n[:, :, None] - mu_y[:, :, None] * mu_y[:, None, :]
        return mu_y, self.template * (self.stats.shift + mu_y), cov

    def updated(
        self, t_prev: torch.Tensor, moments: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, LowRank]:
        """Mean offset, target and low-rank covariance of x - a t_prev, from the moments (A1, A2, V)."""
        import torch

        a1, a2, v = moments
        n = self.stats.count.clamp(min=1)
        mu_y = (self.stats.sum - a1[:, None] * t_prev) / n[:, None]
        basis = torch.stack([t_prev, v, mu_y], dim=2)  # (G, C, 3)
        coef = torch.zeros(n.numel(), 3, 3, dtype=torch.float64, device=n.device)
        coef[:, 0, 0] = a2 / n
        coef[:, 0, 1] = coef[:, 1, 0] = -1.0 / n
        coef[:, 2, 2] = -1.0
        return mu_y, self.template * (self.stats.shift + mu_y), (basis, coef)

    def covariance(self, low_rank: LowRank, groups: Any = slice(None)) -> torch.Tensor:
        """Dense covariance ``G / N + U M U^T`` (G, C, C) of the selected ``groups``."""
        basis, coef = low_rank[0][groups], low_rank[1][groups]
        n = self.stats.count[groups].clamp(min=1)[:, None, None]
        return self.stats.gram[groups] / n + basis @ coef @ basis.transpose(1, 2)

    def dense(self, t: Any, cov: Any, clamp: bool, groups: Any = slice(None)) -> tuple[Any, Any]:
        """C^-1 t and t.C^-1 t (clamped at 1 inside the iterations, like mag1c) by Cholesky, per group."""
        cit, _ = solve(cov, t, self.shrinkage[groups], self.what, self.stats.count[groups])
        norm = (t * cit).sum(-1)
        return cit, (norm.clip(min=1.0) if clamp else norm)

    def woodbury(
        self, t: torch.Tensor, low_rank: LowRank, inverses: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """C^-1 t and max(t.C^-1 t, 1) of a low-rank covariance, by Woodbury from ``(G / N)^-1``.

        Args:
            t: Targets (G, C).
            low_rank: The covariance as ``(U, M)``.
            inverses: :meth:`second_moment_inverses`, or None to factorize every dense covariance.
        """
        import torch

        if inverses is None:
            return self.dense(t, self.covariance(low_rank), clamp=True)
        inverse, dense = inverses
        basis, coef = low_rank
        solved = inverse @ torch.cat([basis, t[:, :, None]], dim=2)  # B^-1 [U, t]
        inner = basis.transpose(1, 2) @ solved  # U^T B^-1 [U, t]: (G, 3, 4)
        system = torch.eye(3, dtype=t.dtype, device=t.device) + coef @ inner[:, :, :3]
        z = solve3_batched(system, (coef @ inner[:, :, 3:])[..., 0])
        cit = solved[:, :, 3] - (solved[:, :, :3] @ z[:, :, None])[..., 0]
        norm = (t * cit).sum(-1).clamp(min=1.0)
        if bool(dense.any()):
            cit[dense], norm[dense] = self.dense(t[dense], self.covariance(low_rank, dense), True, dense)
        return cit, norm

    def second_moment_inverses(self) -> tuple[Any, Any]:
        """``(G / N)^-1`` per group (row-major) and the (G,) groups that need a dense solve every iteration.

        Those are the groups with shrinkage or a singular G / N; their inverse is the identity (unused).
        """
        n = self.stats.count.clip(min=1)[:, None, None]
        eye = eye_like(n, self.stats.gram.shape[-1])
        matrix = self.stats.gram / n  # in-place edits below: few (G, C, C) temporaries
        matrix[self.stats.count == 0] = eye
        factor, singular = cholesky_ex(matrix)
        del matrix
        if bool(singular.any()):
            factor[singular] = eye
        return cholesky_inverse(factor).mT, singular | (self.shrinkage != 0)
