"""The plain Vision Transformer on a fixed channel stack: the baseline of the channel-adaptive families.

Dosovitskiy et al., "An Image is Worth 16x16 Words", ICLR 2021, https://arxiv.org/abs/2010.11929, as the
ViT baselines of ChannelViT (Bao et al., ICLR 2024): one convolutional patch embedding over all
``in_chans`` channels at once (one token per patch), a CLS token, learned positions, pre-norm blocks with
fused attention (:class:`hyperplex.common.layers.Block`, the ChannelViT blocks), a linear head on CLS.

Its first layer mixes the channels, so it runs only on the ``in_chans`` channels it was built (and
trained) for; a model with a missing channel must be given a stand-in value for it (e.g. 0 after
standardisation, the training mean), which is what the HCS comparison (``docs/hcs.md``) does.
"""

from __future__ import annotations

import torch
from torch import nn

from hyperplex.common.channels import ChannelLike
from hyperplex.common.layers import (
    PatchEmbed,
    check_patchable,
    resample_pos_embed,
    trunc_normal_init,
    vit_blocks,
)
from hyperplex.common.models._base import PatchFeatures
from hyperplex.common.models._fixed_channels import FixedChannelModel
from hyperplex.common.models._registry import register_model

__all__ = ["ViT"]


class ViT(PatchFeatures, FixedChannelModel):
    """Vision Transformer whose patch embedding takes exactly ``in_chans`` channels.

    Args:
        in_chans: Number of input channels (the only count it accepts).
        img_size: Training image side (positional embeddings are resampled for other sizes).
        patch_size: Patch side in pixels.
        embed_dim: Token width.
        depth: Number of transformer blocks.
        num_heads: Attention heads.
        mlp_ratio: MLP hidden size relative to ``embed_dim``.
        qkv_bias: Bias on the qkv projections.
        drop_rate: Dropout on tokens and projections.
        attn_drop_rate: Dropout on attention weights.
        drop_path_rate: Stochastic depth at the last block (linear from 0).
        num_classes: Size of the linear head on the CLS token (0: return the CLS embedding).
        norm_eps: LayerNorm epsilon.
    """

    def __init__(
        self,
        in_chans: int = 3,
        img_size: int = 224,
        patch_size: int = 16,
        embed_dim: int = 384,
        depth: int = 12,
        num_heads: int = 6,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        num_classes: int = 0,
        norm_eps: float = 1e-6,
    ):
        super().__init__()
        self.in_chans, self.patch_size, self.embed_dim = in_chans, patch_size, embed_dim
        self.grid = (img_size // patch_size, img_size // patch_size)
        self.patch_embed = PatchEmbed(in_chans, embed_dim, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid[0] * self.grid[1], embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        self.blocks = vit_blocks(embed_dim, depth, num_heads, mlp_ratio, qkv_bias, drop_rate, attn_drop_rate,
                                 drop_path_rate, norm_eps)  # fmt: skip
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        trunc_normal_init(self.modules(), (self.pos_embed, self.cls_token))

    def num_tokens(self, num_channels: int, img_size: int | tuple[int, int]) -> int:
        """``1 + N`` tokens whatever the channel count (the channels are mixed into each patch token)."""
        h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
        return 1 + (h // self.patch_size) * (w // self.patch_size)

    def forward_features(
        self, x: torch.Tensor, channels: ChannelLike | None = None, channel_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Tokens (B, 1 + N, D) after the final norm, CLS first, then the patches row-major.

        Args:
            x: Images (B, in_chans, H, W), sides multiples of ``patch_size``.
            channels: The channels of ``x`` (checked against ``in_chans`` and ``trained_channels``), or None.
            channel_mask: Must be None (the model needs every channel of every sample).

        Raises:
            ChannelMismatchError: If ``x`` does not have ``in_chans`` channels, or they are not the trained ones.
            InvalidParameterError: If ``x`` is not 4-D or a channel mask is given.
        """
        self.check_input(x, channels, channel_mask)
        grid = check_patchable(x, self.patch_size)
        pos = self.pos_embed if grid == self.grid else resample_pos_embed(self.pos_embed, grid)
        seq = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), self.patch_embed(x)], dim=1)
        seq = self.pos_drop(seq + pos)
        for block in self.blocks:
            seq = block(seq)
        return self.norm(seq)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Head on the CLS token (the CLS embedding when ``num_classes`` is 0)."""
        return self.head(features[:, 0])

    def forward(
        self, x: torch.Tensor, channels: ChannelLike | None = None, channel_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Class logits (B, num_classes), or the CLS embedding (B, D) without a head; see :meth:`forward_features`."""
        return self.forward_head(self.forward_features(x, channels, channel_mask))

    def feature_map(
        self, x: torch.Tensor, channels: ChannelLike | None = None, channel_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Patch tokens as a map (B, D, H / p, W / p); see :meth:`forward_features`."""
        tokens = self.forward_features(x, channels, channel_mask)[:, 1:]
        rows, cols = x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size
        return tokens.transpose(1, 2).reshape(x.shape[0], self.embed_dim, rows, cols)


def _preset(defaults: dict, overrides: dict) -> ViT:
    return ViT(**{**defaults, **overrides})


@register_model(input="microscopy", sized_by="in_chans")
def vit_test(**overrides) -> ViT:
    """Tiny ViT for tests (the ``channelvit_test`` shape): D=32, depth 2, 2 heads, patch 8, 32 px, 8 channels."""
    return _preset(dict(in_chans=8, img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2), overrides)


@register_model(input="microscopy", sized_by="in_chans")
def vit_tiny_patch16(**overrides) -> ViT:
    """ViT-T/16 (D=192, depth 12, 3 heads), 224 px: the fixed-channel twin of ``channelvit_tiny_patch16``."""
    return _preset(dict(embed_dim=192, depth=12, num_heads=3, patch_size=16), overrides)


@register_model(input="microscopy", sized_by="in_chans")
def vit_small_patch16(**overrides) -> ViT:
    """ViT-S/16 (D=384, depth 12, 6 heads), 224 px: the fixed-channel twin of ``channelvit_small_patch16``."""
    return _preset(dict(embed_dim=384, depth=12, num_heads=6, patch_size=16), overrides)
