"""Patch embeddings: all channels into one token, or one token per channel and patch."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PatchEmbed", "PatchEmbedPerChannel", "check_patchable"]


def check_patchable(x: torch.Tensor, patch_size: int) -> tuple[int, int]:
    """Return the patch grid ``(H // p, W // p)`` of a (B, C, H, W) batch.

    Raises:
        ValueError: If ``x`` is not 4-D or its size is not a multiple of the patch size.
    """
    if x.ndim != 4:
        raise ValueError(f"Expected a (B, C, H, W) batch, got shape {tuple(x.shape)}.")
    h, w = x.shape[-2:]
    if h % patch_size or w % patch_size:
        raise ValueError(f"Image size {h}x{w} is not a multiple of the patch size {patch_size}; crop or pad it.")
    return h // patch_size, w // patch_size


class PatchEmbed(nn.Module):
    """Non-overlapping ``p x p`` patches of all channels projected to one token each.

    Args:
        in_chans: Input channels.
        embed_dim: Token width.
        patch_size: Patch side in pixels.
        bias: Bias on the projection.
    """

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int = 16, bias: bool = True):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed (B, C, H, W) into (B, N, D) tokens, row-major over the patch grid."""
        check_patchable(x, self.patch_size)
        return self.proj(x).flatten(2).transpose(1, 2)


class PatchEmbedPerChannel(nn.Module):
    """One token per channel and patch, with a projection shared by all channels.

    The projection sees a single channel at a time, so any number of channels works and a channel
    subset gives exactly the tokens of those channels (ChannelViT, ChAda-ViT).

    Args:
        embed_dim: Token width.
        patch_size: Patch side in pixels.
        bias: Bias on the projection.
    """

    def __init__(self, embed_dim: int, patch_size: int = 16, bias: bool = True):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(1, embed_dim, patch_size, stride=patch_size, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed (B, C, H, W) into (B, C, N, D) tokens."""
        check_patchable(x, self.patch_size)
        b, c, h, w = x.shape
        tokens = self.proj(x.reshape(b * c, 1, h, w)).flatten(2).transpose(1, 2)  # (B*C, N, D)
        return tokens.reshape(b, c, tokens.shape[1], tokens.shape[2])
