"""The LESS transformer block on a (B, C + 1, N + 1, D) spatial-spectral token grid."""

from __future__ import annotations

import torch
from torch import nn

from hyperplex.common.layers.drop_path import DropPath
from hyperplex.common.layers.layer_scale import LayerScale
from hyperplex.common.layers.low_rank_attention import AttentionPool, LowRankAttention
from hyperplex.common.layers.mlp import Mlp

__all__ = ["LESSBlock", "LowDimPool", "less_dims"]


def less_dims(embed_dim: int, num_heads: int, channel_embed_dims_per_head: int) -> tuple[int, int]:
    """Spectral and spatial token widths ``(channel_dim, spatial_dim)`` (official derivation).

    ``channel_dim = c_hd * heads`` and ``spatial_dim = D // channel_dim * heads``.

    Raises:
        ValueError: If the per-head widths do not multiply to ``D / heads``.
    """
    channel_dim = channel_embed_dims_per_head * num_heads
    spatial_dim = embed_dim // channel_dim * num_heads
    if (channel_dim // num_heads) * (spatial_dim // num_heads) * num_heads != embed_dim:
        raise ValueError(
            f"embed_dim {embed_dim} with {num_heads} heads and channel_embed_dims_per_head "
            f"{channel_embed_dims_per_head} gives no integer spatial head width; pick values with "
            "embed_dim == heads * c_hd * s_hd."
        )
    return channel_dim, spatial_dim


class LowDimPool(nn.Module):
    """Project the grid to low-dimensional spectral (per channel) and spatial (per position) tokens.

    ``X_C = x_c[:, :, 0] + pool_over_positions(norm(x_c))`` and
    ``X_S = x_s[:, 0] + pool_over_channels(norm(x_s))`` with ``x_c, x_s`` linear projections of the grid.

    Args:
        dim: Grid token width.
        channel_dim: Spectral token width.
        spatial_dim: Spatial token width.
        num_heads: Heads of the attention pools.
        qkv_bias: Bias on the pools' q/kv projections.
        attn_drop: Attention dropout.
        proj_drop: Dropout after the pools' projections.
        norm_eps: LayerNorm epsilon.
    """

    def __init__(
        self,
        dim: int,
        channel_dim: int,
        spatial_dim: int,
        num_heads: int = 8,
        qkv_bias: bool = False,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        norm_eps: float = 1e-6,
    ):
        super().__init__()
        self.channel_norm = nn.LayerNorm(channel_dim, eps=norm_eps)
        self.spatial_norm = nn.LayerNorm(spatial_dim, eps=norm_eps)
        self.channel_pool = AttentionPool(channel_dim, num_heads, qkv_bias, attn_drop, proj_drop)
        self.spatial_pool = AttentionPool(spatial_dim, num_heads, qkv_bias, attn_drop, proj_drop)
        self.channel_linear = nn.Linear(dim, channel_dim)
        self.spatial_linear = nn.Linear(dim, spatial_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Grid (B, C+1, N+1, D) -> spectral tokens (B, C+1, c_d), spatial tokens (B, N+1, s_d)."""
        x_c = self.channel_linear(x)
        x_s = self.spatial_linear(x)
        x_c = x_c[:, :, 0] + self.channel_pool(self.channel_norm(x_c))
        x_s = x_s[:, 0] + self.spatial_pool(self.spatial_norm(x_s.transpose(1, 2)))
        return x_c, x_s


class LESSBlock(nn.Module):
    """Pre-norm block: LESS low-rank attention, then an MLP on every grid token.

    Args:
        dim: Token width ``D``.
        num_heads: Heads.
        channel_dim: Spectral token width (see :func:`less_dims`).
        spatial_dim: Spatial token width.
        mlp_ratio: MLP hidden size relative to ``D``.
        qkv_bias: Bias on attention projections.
        proj_drop: Dropout after projections and in the MLP.
        attn_drop: Attention dropout.
        drop_path: Stochastic depth probability.
        init_values: LayerScale initial gain (None: no LayerScale).
        rank: Query/key pairs per attention branch.
        norm_eps: LayerNorm epsilon.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        channel_dim: int,
        spatial_dim: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = False,
        proj_drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        init_values: float | None = None,
        rank: int = 1,
        norm_eps: float = 1e-6,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.spatial_norm = nn.LayerNorm(spatial_dim, eps=norm_eps)
        self.channel_norm = nn.LayerNorm(channel_dim, eps=norm_eps)
        self.low_dim_pool = LowDimPool(
            dim, channel_dim, spatial_dim, num_heads, qkv_bias, attn_drop, proj_drop, norm_eps
        )
        self.attn = LowRankAttention(dim, channel_dim, spatial_dim, num_heads, qkv_bias, attn_drop, proj_drop, rank)
        self.ls1 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.drop_path1 = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=proj_drop)
        self.ls2 = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.drop_path2 = DropPath(drop_path)

    def forward(self, x: torch.Tensor, spatial_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Update the grid (B, C+1, N+1, D); ``spatial_mask`` is an (N+1, N+1) bool SDPA mask."""
        x_c, x_s = self.low_dim_pool(self.norm1(x))
        update = self.attn(self.channel_norm(x_c), self.spatial_norm(x_s), spatial_mask)
        x = x + self.drop_path1(self.ls1(update))
        return x + self.drop_path2(self.ls2(self.mlp(self.norm2(x))))
