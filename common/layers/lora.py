"""Low-rank adaptation (LoRA) of the query and value projections of a joint qkv linear layer.

Hu et al., "LoRA: Low-Rank Adaptation of Large Language Models", ICLR 2022. As in MIPHEI-ViT
(Balezo et al. 2025, ``src/generators/lora.py``): ``q += alpha * x @ A_q @ B_q`` and
``v += alpha * x @ A_v @ B_v`` with ``A ~ N(0, 1/r)`` and ``B = 0``, so an adapted model starts
exactly equal to the frozen one; keys stay untouched.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["LoRADelta", "LoRAQkv", "apply_lora_qkv"]


class LoRADelta(nn.Module):
    """``alpha * x @ down @ up`` with ``down`` (in, r) and ``up`` (r, out).

    Args:
        in_features: Input size.
        out_features: Output size.
        rank: Rank ``r``.
        alpha: Scale of the update.
    """

    def __init__(self, in_features: int, out_features: int, rank: int, alpha: float = 1.0):
        super().__init__()
        self.alpha = float(alpha)
        self.down = nn.Parameter(torch.empty(in_features, rank))
        self.up = nn.Parameter(torch.empty(rank, out_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``down ~ N(0, 1/r)``, ``up = 0`` (the update starts at zero)."""
        nn.init.normal_(self.down, std=1.0 / math.sqrt(self.down.shape[1]))
        nn.init.zeros_(self.up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The low-rank update for inputs ``x`` (..., in)."""
        return self.alpha * (x @ self.down @ self.up)


class LoRAQkv(nn.Module):
    """A joint ``qkv`` linear layer (out = 3 * dim) with LoRA updates on the q and v thirds.

    Args:
        base: The wrapped ``nn.Linear(dim, 3 * dim)``.
        rank: LoRA rank.
        alpha: LoRA scale.
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float = 1.0):
        super().__init__()
        self.base = base
        self.dim = base.out_features // 3
        self.lora_q = LoRADelta(base.in_features, self.dim, rank, alpha)
        self.lora_v = LoRADelta(base.in_features, self.dim, rank, alpha)

    @property
    def in_features(self) -> int:
        """Input size of the wrapped layer."""
        return self.base.in_features

    @property
    def out_features(self) -> int:
        """Output size of the wrapped layer."""
        return self.base.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``[q + dq, k, v + dv]`` for tokens ``x`` (..., in)."""
        q, k, v = self.base(x).split(self.dim, dim=-1)
        return torch.cat([q + self.lora_q(x), k, v + self.lora_v(x)], dim=-1)


def apply_lora_qkv(blocks: nn.Module, rank: int, alpha: float = 1.0) -> list[LoRAQkv]:
    """Wrap the ``attn.qkv`` linear layer of every transformer block in ``blocks`` with :class:`LoRAQkv`.

    Works for any block with an ``attn.qkv`` ``nn.Linear`` (our :class:`~hyperplex.common.layers.Block`,
    timm and DINOv2 blocks).

    Args:
        blocks: Iterable module of blocks (e.g. ``vit.blocks``).
        rank: LoRA rank.
        alpha: LoRA scale.

    Returns:
        The new LoRA modules.

    Raises:
        ValueError: If a block has no ``attn.qkv`` linear layer.
    """
    wrapped = []
    for i, block in enumerate(blocks):
        qkv = getattr(getattr(block, "attn", None), "qkv", None)
        if not isinstance(qkv, nn.Linear):
            raise ValueError(f"Block {i} has no `attn.qkv` nn.Linear to adapt with LoRA (found {type(qkv)}).")
        block.attn.qkv = LoRAQkv(qkv, rank, alpha)
        wrapped.append(block.attn.qkv)
    return wrapped
