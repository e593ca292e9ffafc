"""Gated feed-forward network with a packed gate/value projection (timm ``SwiGLUPacked``)."""

from __future__ import annotations

import torch
from torch import nn

from hyperplex.common.layers.mlp import activation

__all__ = ["GluMlp"]


class GluMlp(nn.Module):
    """``fc2(act(a) * b)`` where ``[a, b] = fc1(x)`` (SwiGLU with ``act="silu"``), as in DINOv2-g / H-Optimus-0.

    Key layout matches timm ``GluMlp`` / ``SwiGLUPacked``: ``fc1`` (in -> hidden), ``fc2`` (hidden / 2 -> in).

    Args:
        in_features: Input and output size.
        hidden_features: Output size of ``fc1``; must be even (gate and value halves).
        act: Activation of the gate half.
        bias: Biases on the linear layers.

    Raises:
        ValueError: If ``hidden_features`` is odd.
    """

    def __init__(self, in_features: int, hidden_features: int, act: str = "silu", bias: bool = True):
        super().__init__()
        if hidden_features % 2:
            raise ValueError(f"GluMlp needs an even hidden size (gate + value halves), got {hidden_features}.")
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
        self.act = activation(act)
        self.fc2 = nn.Linear(hidden_features // 2, in_features, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the gated network to the last dimension."""
        gate, value = self.fc1(x).chunk(2, dim=-1)
        return self.fc2(self.act(gate) * value)
