"""SegFormer (MiT) encoder blocks: overlapping patch embedding, efficient self-attention, Mix-FFN.

Xie et al., "SegFormer: Simple and Efficient Design for Semantic Segmentation with Transformers",
NeurIPS 2021. The optional 1x1 spectral convolution in the patch embedding is the HyperspectralViTs
change (Růžička & Markham, IEEE JSTARS 2025). Tokens are ``(B, N, D)`` in row-major order over an
``(h, w)`` grid that travels alongside them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hyperplex.common.layers.drop_path import DropPath

__all__ = ["EfficientSelfAttention", "MixFFN", "OverlapPatchEmbed", "SegFormerLayer", "tokens_to_map"]


def tokens_to_map(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Reshape tokens (B, h*w, D) to a feature map (B, D, h, w)."""
    b, n, d = tokens.shape
    assert n == height * width, f"{n} tokens do not fill a {height}x{width} grid"
    return tokens.transpose(1, 2).reshape(b, d, height, width)


class OverlapPatchEmbed(nn.Module):
    """Overlapping ``k x k`` strided convolution to tokens, with an optional 1x1 spectral conv first.

    Args:
        in_chans: Input channels (spectral bands for the first stage).
        embed_dim: Token width.
        patch_size: Convolution kernel ``k`` (padding ``k // 2``).
        stride: Downsampling factor.
        spectral_conv: Apply a ``Conv2d(in_chans, in_chans, 1)`` before the patch convolution.
    """

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int, stride: int, spectral_conv: bool = False):
        super().__init__()
        self.spectral = nn.Conv2d(in_chans, in_chans, 1) if spectral_conv else None
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=stride, padding=patch_size // 2)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        """Embed (B, C, H, W) into tokens (B, h*w, D); returns ``(tokens, h, w)``."""
        if self.spectral is not None:
            x = self.spectral(x)
        x = self.proj(x)
        h, w = x.shape[-2:]
        return self.norm(x.flatten(2).transpose(1, 2)), h, w


class EfficientSelfAttention(nn.Module):
    """Multi-head attention whose keys/values come from a spatially reduced token grid.

    With ``sr_ratio > 1`` keys and values are computed from the grid downsampled by a strided
    ``sr x sr`` convolution plus LayerNorm, so cost is ``N * N / sr^2`` rather than ``N^2``.
    Uses fused scaled-dot-product attention.

    Args:
        dim: Token width.
        num_heads: Attention heads; must divide ``dim``.
        sr_ratio: Spatial reduction of keys and values.
        qkv_bias: Bias on the q, k, v projections.
        attn_drop: Attention dropout (training only).
        proj_drop: Dropout after the output projection.

    Raises:
        ValueError: If ``num_heads`` does not divide ``dim``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        sr_ratio: int = 1,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"num_heads ({num_heads}) must divide dim ({dim}).")
        self.num_heads = num_heads
        self.sr_ratio = sr_ratio
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.k = nn.Linear(dim, dim, bias=qkv_bias)
        self.v = nn.Linear(dim, dim, bias=qkv_bias)
        if sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, sr_ratio, stride=sr_ratio)
            self.norm = nn.LayerNorm(dim)
        self.attn_drop = float(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.reshape(b, n, self.num_heads, d // self.num_heads).transpose(1, 2)  # (B, heads, N, hd)

    def _reduced(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        if self.sr_ratio == 1:
            return x
        grid = self.sr(tokens_to_map(x, height, width))
        return self.norm(grid.flatten(2).transpose(1, 2))

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Attend from tokens (B, h*w, D) to the reduced grid; returns (B, h*w, D)."""
        kv = self._reduced(x, height, width)
        q, k, v = self._heads(self.q(x)), self._heads(self.k(kv)), self._heads(self.v(kv))
        drop = self.attn_drop if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=drop)
        out = out.transpose(1, 2).reshape(x.shape)
        return self.proj_drop(self.proj(out))


class MixFFN(nn.Module):
    """``fc2(GELU(dwconv3x3(fc1(x))))``: the depth-wise conv supplies positional information.

    Args:
        dim: Token width.
        hidden_dim: Hidden width.
        drop: Dropout after the activation and after ``fc2``.
    """

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.dwconv = nn.Conv2d(hidden_dim, hidden_dim, 3, padding=1, groups=hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Apply to tokens (B, h*w, D) on an ``(h, w)`` grid."""
        x = self.fc1(x)
        x = self.dwconv(tokens_to_map(x, height, width)).flatten(2).transpose(1, 2)
        return self.drop(self.fc2(self.drop(self.act(x))))


class SegFormerLayer(nn.Module):
    """Pre-norm block: ``x + attn(norm1(x))`` then ``x + mixffn(norm2(x))`` with drop path.

    Args:
        dim: Token width.
        num_heads: Attention heads.
        sr_ratio: Spatial reduction of keys and values.
        mlp_ratio: Mix-FFN hidden width relative to ``dim``.
        drop: Dropout in attention projection and Mix-FFN.
        drop_path: Stochastic-depth probability.
    """

    def __init__(
        self, dim: int, num_heads: int, sr_ratio: int, mlp_ratio: float = 4.0, drop: float = 0.0, drop_path: float = 0.0
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = EfficientSelfAttention(dim, num_heads, sr_ratio, proj_drop=drop)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MixFFN(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, x: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Update tokens (B, h*w, D) on an ``(h, w)`` grid."""
        x = x + self.drop_path(self.attn(self.norm1(x), height, width))
        return x + self.drop_path(self.mlp(self.norm2(x), height, width))
