"""Stochastic depth (drop path) per sample."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DropPath", "drop_path", "drop_path_rates"]


def drop_path(x: torch.Tensor, prob: float = 0.0, training: bool = False) -> torch.Tensor:
    """Zero whole samples of a residual branch with probability ``prob``, rescaling the rest.

    Args:
        x: Branch output, batch first.
        prob: Probability of dropping a sample's branch.
        training: Only active in training mode.

    Returns:
        ``x`` with dropped samples zeroed and kept ones scaled by ``1 / (1 - prob)``.
    """
    if prob == 0.0 or not training:
        return x
    keep = 1.0 - prob
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    mask = x.new_empty(shape).bernoulli_(keep)
    return x * mask / keep


def drop_path_rates(drop_path_rate: float, depth: int) -> list[float]:
    """Per-block stochastic-depth probabilities rising linearly from 0 to ``drop_path_rate`` (timm's rule)."""
    return [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]


class DropPath(nn.Module):
    """Module form of :func:`drop_path`.

    Args:
        prob: Probability of dropping a sample's residual branch.
    """

    def __init__(self, prob: float = 0.0):
        super().__init__()
        self.prob = float(prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply stochastic depth (identity in eval mode)."""
        return drop_path(x, self.prob, self.training)

    def extra_repr(self) -> str:
        """Show the drop probability in the module repr."""
        return f"prob={self.prob}"
