"""Pre-norm transformer block (ViT / DINOv2 layout)."""

from __future__ import annotations

import torch
from torch import nn

from hyperplex.common.layers.attention import Attention
from hyperplex.common.layers.drop_path import DropPath, drop_path_rates
from hyperplex.common.layers.layer_scale import LayerScale
from hyperplex.common.layers.mlp import Mlp

__all__ = ["Block", "vit_blocks"]


class Block(nn.Module):
    """``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``, with optional LayerScale and drop path.

    Key layout matches timm/DINO: ``norm1, attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2``
    (plus ``ls1.gamma, ls2.gamma`` with LayerScale).

    Args:
        dim: Token width.
        num_heads: Attention heads.
        mlp_ratio: Hidden size of the MLP relative to ``dim``.
        qkv_bias: Bias on the qkv projection.
        drop: Dropout after projections.
        attn_drop: Dropout on attention weights.
        drop_path: Stochastic-depth probability.
        init_values: LayerScale initial gain; None disables LayerScale.
        norm_eps: LayerNorm epsilon.
        act: MLP activation name.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        init_values: float | None = None,
        norm_eps: float = 1e-6,
        act: str = "gelu",
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        self.ls1 = LayerScale(dim, init_values) if init_values is not None else nn.Identity()
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act=act, drop=drop)
        self.ls2 = LayerScale(dim, init_values) if init_values is not None else nn.Identity()

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Apply the block to tokens ``x`` (B, L, D); ``attn_mask`` as in :class:`Attention`."""
        x = x + self.drop_path(self.ls1(self.attn(self.norm1(x), attn_mask=attn_mask)))
        return x + self.drop_path(self.ls2(self.mlp(self.norm2(x))))


def vit_blocks(
    dim: int, depth: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, drop: float, attn_drop: float,
    drop_path_rate: float, norm_eps: float,
) -> nn.ModuleList:  # fmt: skip
    """``depth`` plain ViT blocks with stochastic depth rising linearly to ``drop_path_rate`` (keys ``N.*``)."""
    return nn.ModuleList(
        Block(dim, num_heads, mlp_ratio, qkv_bias, drop, attn_drop, rate, norm_eps=norm_eps)
        for rate in drop_path_rates(drop_path_rate, depth)
    )
