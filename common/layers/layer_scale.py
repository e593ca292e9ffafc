"""LayerScale: a learned per-channel gain on a residual branch (CaiT, DINOv2)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["LayerScale"]


class LayerScale(nn.Module):
    """Multiply the last dimension by a learned vector initialised to ``init_values``.

    Args:
        dim: Size of the last dimension.
        init_values: Initial gain.
    """

    def __init__(self, dim: int, init_values: float = 1e-5):
        super().__init__()
        self.init_values = float(init_values)
        self.gamma = nn.Parameter(torch.full((dim,), self.init_values))

    def reset_parameters(self) -> None:
        """Reset the gain to ``init_values``."""
        nn.init.constant_(self.gamma, self.init_values)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale ``x`` channel-wise."""
        return x * self.gamma
