"""Transformer feed-forward network (two linear layers with an activation)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Mlp", "activation"]

_ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU, "tanh": nn.Tanh}


def activation(name: str) -> nn.Module:
    """Build an activation module by name (``gelu``, ``relu``, ``silu``, ``tanh``).

    Raises:
        ValueError: If the name is unknown.
    """
    if name not in _ACTIVATIONS:
        raise ValueError(f"Unknown activation {name!r}; choose one of {sorted(_ACTIVATIONS)}.")
    return _ACTIVATIONS[name]()


class Mlp(nn.Module):
    """``fc2(drop(act(fc1(x))))`` followed by dropout, applied to the last dimension.

    Args:
        in_features: Input size.
        hidden_features: Hidden size (default: ``in_features``).
        out_features: Output size (default: ``in_features``).
        act: Activation name.
        drop: Dropout probability after the activation and after ``fc2``.
        bias: Whether the linear layers have biases.
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int | None = None,
        out_features: int | None = None,
        act: str = "gelu",
        drop: float = 0.0,
        bias: bool = True,
    ):
        super().__init__()
        hidden_features = hidden_features or in_features
        out_features = out_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
        self.act = activation(act)
        self.drop1 = nn.Dropout(drop)
        self.fc2 = nn.Linear(hidden_features, out_features, bias=bias)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the feed-forward network to the last dimension."""
        return self.drop2(self.fc2(self.drop1(self.act(self.fc1(x)))))
