"""ViT weight initialisation: truncated normal (std 0.02) tokens and linear weights, zero biases."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

__all__ = ["trunc_normal_init"]


def trunc_normal_init(modules: Iterable[nn.Module], tensors: Iterable[torch.Tensor] = (), std: float = 0.02) -> None:
    """Initialise ``tensors``, then the weights of every ``nn.Linear`` in ``modules`` (biases to zero).

    Args:
        modules: Modules to visit, e.g. ``model.modules()``.
        tensors: Parameters (position embeddings, class or channel tokens) drawn first, in this order.
        std: Standard deviation of the truncated normal.
    """
    with torch.no_grad():
        for tensor in tensors:
            nn.init.trunc_normal_(tensor, std=std)
        for module in modules:
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
