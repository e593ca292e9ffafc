"""LESS low-rank spatial-spectral attention (Si et al., arXiv 2503.12843).

Tokens live on a grid ``(B, C + 1, N + 1, D)``: row 0 holds the spectral-CLS tokens (one per
position), column 0 the spatial-CLS tokens (one per channel), ``[0, 0]`` the global CLS. Instead of
attention over all ``(C + 1)(N + 1)`` tokens, the grid is pooled to ``C + 1`` low-dimensional
spectral tokens and ``N + 1`` spatial tokens; each set runs its own attention (``rank`` separate
query/key pairs sharing one value), and the two results are recombined by an outer (Kronecker)
product summed over the ranks: ``out[c, n] = sum_r (A_c^r V_c)[c] ⊗ (A_s^r V_s)[n]`` per head.
Cost: ``O(r (C^2 + N^2))`` attention plus ``O(C N D)`` for the recombination; nothing of size
``(C N)^2`` exists. Module and parameter names follow the official code (``uiuctml/GeospatialFM``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AttentionBranch", "AttentionPool", "LowRankAttention", "perception_field_mask"]


class AttentionPool(nn.Module):
    """Pool each row of a (B, R, L, d) tensor into one token, using the row's first token as query.

    Args:
        dim: Token width ``d``.
        num_heads: Heads; must divide ``dim``.
        qkv_bias: Bias on the q and kv projections.
        attn_drop: Attention dropout (training only).
        proj_drop: Dropout after the output projection.
    """

    def __init__(
        self, dim: int, num_heads: int = 1, qkv_bias: bool = False, attn_drop: float = 0.0, proj_drop: float = 0.0
    ):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"num_heads ({num_heads}) must divide dim ({dim}).")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, dim * 2, bias=qkv_bias)
        self.attn_drop = float(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool (B, R, L, d) to (B, R, d)."""
        b, r, n, d = x.shape
        x = x.reshape(b * r, n, d)
        q = self.q(x[:, :1]).reshape(b * r, 1, self.num_heads, self.head_dim).transpose(1, 2)
        kv = self.kv(x).reshape(b * r, n, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        drop = self.attn_drop if self.training else 0.0
        out = F.scaled_dot_product_attention(q, kv[0], kv[1], dropout_p=drop)  # (B*R, heads, 1, hd)
        return self.proj_drop(self.proj(out.reshape(b, r, d)))


class AttentionBranch(nn.Module):
    """Multi-head attention with ``rank`` query/key pairs sharing one value projection.

    Args:
        dim: Token width.
        num_heads: Heads.
        head_dim: Width per head of q, k and v.
        qkv_bias: Bias on the projections.
        attn_drop: Attention dropout.
        rank: Number of query/key pairs.
    """

    def __init__(
        self, dim: int, num_heads: int, head_dim: int, qkv_bias: bool = False, attn_drop: float = 0.0, rank: int = 1
    ):
        super().__init__()
        self.num_heads, self.head_dim, self.rank = num_heads, head_dim, rank
        self.qk = nn.Linear(dim, num_heads * head_dim * rank * 2, bias=qkv_bias)
        self.v = nn.Linear(dim, num_heads * head_dim, bias=qkv_bias)
        self.attn_drop = float(attn_drop)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Attend over the L tokens of ``x`` (B, L, dim); returns (B, rank, heads, L, head_dim)."""
        b, n, _ = x.shape
        v = self.v(x).reshape(b, n, self.num_heads, self.head_dim).transpose(1, 2)
        qk = self.qk(x).reshape(b, n, 2, self.num_heads, self.rank, self.head_dim).permute(2, 0, 4, 3, 1, 5)
        shape = (b * self.rank, self.num_heads, n, self.head_dim)  # 4-D: the fused CPU kernels need it
        q, k = qk[0].reshape(shape), qk[1].reshape(shape)
        v = v.unsqueeze(1).expand(-1, self.rank, -1, -1, -1).reshape(shape)
        drop = self.attn_drop if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=drop)
        return out.reshape(b, self.rank, self.num_heads, n, self.head_dim)


class LowRankAttention(nn.Module):
    """Spectral and spatial attention branches recombined by a rank-summed outer product.

    Args:
        dim: Full token width ``D``.
        channel_dim: Width of the spectral tokens (``heads * c_head_dim``).
        spatial_dim: Width of the spatial tokens (``heads * s_head_dim``).
        num_heads: Heads; ``D / heads`` must equal ``c_head_dim * s_head_dim``.
        qkv_bias: Bias on the branch projections.
        attn_drop: Attention dropout.
        proj_drop: Dropout after the output projection.
        rank: Query/key pairs per branch, summed in the recombination.

    Raises:
        ValueError: If the widths are inconsistent.
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
        rank: int = 1,
    ):
        super().__init__()
        if channel_dim % num_heads or spatial_dim % num_heads:
            raise ValueError(f"num_heads ({num_heads}) must divide channel_dim and spatial_dim.")
        c_hd, s_hd = channel_dim // num_heads, spatial_dim // num_heads
        if dim != num_heads * c_hd * s_hd:
            raise ValueError(f"dim ({dim}) must equal num_heads * c_head_dim * s_head_dim ({num_heads}*{c_hd}*{s_hd}).")
        self.num_heads = num_heads
        self.channel_branch = AttentionBranch(channel_dim, num_heads, c_hd, qkv_bias, attn_drop, rank)
        self.spatial_branch = AttentionBranch(spatial_dim, num_heads, s_hd, qkv_bias, attn_drop, rank)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x_c: torch.Tensor, x_s: torch.Tensor, spatial_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Combine spectral tokens (B, C, c_d) and spatial tokens (B, N, s_d) into a (B, C, N, D) update.

        Args:
            x_c: Spectral tokens.
            x_s: Spatial tokens.
            spatial_mask: Boolean (N, N) SDPA mask of the spatial branch (True = may attend).
        """
        b, c, _ = x_c.shape
        n = x_s.shape[1]
        yc = self.channel_branch(x_c)  # (B, r, h, C, c_hd)
        ys = self.spatial_branch(x_s, spatial_mask)  # (B, r, h, N, s_hd)
        # outer product per head, summed over ranks (einsum contracts r without materialising it)
        y = torch.einsum("brhca,brhnd->bhcnad", yc, ys).flatten(-2)  # (B, h, C, N, hd)
        y = y.permute(0, 2, 3, 1, 4).reshape(b, c, n, -1)
        return self.proj_drop(self.proj(y))


def perception_field_mask(
    grid: tuple[int, int], patch_size: int, gsd: float, radius: float, cls_token: bool = True
) -> torch.Tensor:
    """Boolean (N, N) mask letting a patch attend only to patches within ``radius`` metres.

    Distance between patches ``(i, j)`` and ``(k, l)`` is ``hypot(i - k, j - l) * patch_size * gsd``
    (official definition). With ``cls_token`` a leading all-True row and column are added.

    Args:
        grid: Patch rows and columns.
        patch_size: Patch side in pixels.
        gsd: Ground sampling distance, metres per pixel.
        radius: Attention radius in metres.
        cls_token: Prepend the CLS row/column.

    Returns:
        Tensor (N [+1], N [+1]) of bool, True = may attend.
    """
    rows = torch.arange(grid[0], dtype=torch.float32).repeat_interleave(grid[1])
    cols = torch.arange(grid[1], dtype=torch.float32).repeat(grid[0])
    points = torch.stack([rows, cols], dim=1)
    mask = torch.cdist(points, points) * (patch_size * gsd) <= radius + 1e-6 * max(radius, 1.0)
    if cls_token:
        mask = F.pad(mask, (1, 0, 1, 0), value=True)
    return mask
