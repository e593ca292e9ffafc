"""Multi-head self-attention on fused scaled-dot-product attention.

Everything goes through :func:`torch.nn.functional.scaled_dot_product_attention`, which picks a
flash / memory-efficient kernel where one exists, so no ``(L, L)`` attention matrix is stored for
the backward pass. Masks follow the SDPA convention: boolean ``True`` means "may attend".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Attention", "key_padding_to_attn_mask"]


def key_padding_to_attn_mask(key_padding_mask: torch.Tensor | None) -> torch.Tensor | None:
    """Turn a ``(B, L)`` key-padding mask (True = padding, torch convention) into an SDPA mask.

    Args:
        key_padding_mask: Boolean, True where a token is padding and must not be attended to.

    Returns:
        A boolean ``(B, 1, 1, L)`` mask, True where attention is allowed; None passes through.
    """
    if key_padding_mask is None:
        return None
    return (~key_padding_mask.bool())[:, None, None, :]


class Attention(nn.Module):
    """Multi-head self-attention with a joint qkv projection (timm / DINOv2 key layout).

    Args:
        dim: Token width.
        num_heads: Number of heads; must divide ``dim``.
        qkv_bias: Bias on the qkv projection.
        attn_drop: Dropout on attention weights (training only).
        proj_drop: Dropout after the output projection.

    Raises:
        ValueError: If ``num_heads`` does not divide ``dim``.
    """

    def __init__(
        self, dim: int, num_heads: int = 8, qkv_bias: bool = True, attn_drop: float = 0.0, proj_drop: float = 0.0
    ):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"num_heads ({num_heads}) must divide dim ({dim}).")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = float(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def split_heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Project ``x`` (B, L, D) to q, k, v, each (B, heads, L, head_dim)."""
        b, n, _ = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return qkv[0], qkv[1], qkv[2]

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Attend over the tokens of ``x``.

        Args:
            x: Tokens, (B, L, D).
            attn_mask: Boolean mask broadcastable to (B, heads, L, L), True = may attend; or a
                float mask added to the logits.

        Returns:
            Updated tokens, (B, L, D).
        """
        b, n, d = x.shape
        q, k, v = self.split_heads(x)
        drop = self.attn_drop if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=drop)
        out = out.transpose(1, 2).reshape(b, n, d)
        return self.proj_drop(self.proj(out))
