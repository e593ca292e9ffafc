"""Base of the channel-token ViTs (ChannelViT, ChAda-ViT): one token per channel and patch, plus CLS.

Tokens are in channel-major order after the CLS token (token ``1 + c * N + n``). The blocks, the
key-padding mask of absent channels, the CLS head and the channel-averaged dense map are the same
for every such family; a family supplies :meth:`ChannelTokenModel.tokenize` (its channel
embedding) and the modules ``blocks``, ``norm``, ``head``, ``pos_embed``.
"""

from __future__ import annotations

import abc

import torch
from torch import nn

from hyperplex.common.channels import ChannelLike, ChannelSet
from hyperplex.common.errors import ChannelMismatchError
from hyperplex.common.layers import key_padding_to_attn_mask, resample_pos_embed
from hyperplex.common.models._base import HyperplexModel, PatchFeatures

__all__ = ["ChannelTokenModel", "channel_mean_map", "token_mask"]


def token_mask(channel_mask: torch.Tensor | None, num_patches: int) -> torch.Tensor | None:
    """SDPA mask (B, 1, 1, 1 + C * N) from a (B, C) channel mask (True = channel present)."""
    if channel_mask is None:
        return None
    pad = ~channel_mask.bool().repeat_interleave(num_patches, dim=1)
    pad = torch.cat([torch.zeros_like(pad[:, :1]), pad], dim=1)  # CLS is never padding
    return key_padding_to_attn_mask(pad)


def channel_mean_map(
    features: torch.Tensor, grid: tuple[int, int], channel_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Average channel-major patch tokens over channels into a (B, D, rows, cols) feature map.

    Args:
        features: Tokens (B, 1 + C * N, D), CLS first.
        grid: Patch rows and columns (N = rows * cols).
        channel_mask: Optional (B, C) bool; absent channels are left out of the mean.
    """
    b, _, d = features.shape
    n = grid[0] * grid[1]
    tokens = features[:, 1:].reshape(b, -1, n, d)  # (B, C, N, D)
    if channel_mask is not None and channel_mask.shape[1] == tokens.shape[1]:
        weight = channel_mask.to(tokens.dtype)[:, :, None, None]
        mean = (tokens * weight).sum(1) / weight.sum(1).clamp_min(1)
    else:
        mean = tokens.mean(1)
    return mean.transpose(1, 2).reshape(b, d, *grid)


class ChannelTokenModel(PatchFeatures, HyperplexModel):
    """A ViT over one token per channel and patch (plus CLS), attending over all ``1 + C * N`` tokens.

    ``forward_features`` gives the tokens (B, 1 + C * N, D); ``forward`` the head on the CLS token;
    ``feature_map`` the patch tokens averaged over each sample's present channels (stride
    ``patch_size``). Subclasses set ``patch_size``, ``embed_dim``, ``grid`` (trained patch grid) and
    the modules ``pos_embed``, ``blocks``, ``norm``, ``head``, and implement :meth:`tokenize`.
    """

    patch_size: int
    embed_dim: int
    grid: tuple[int, int]
    pos_embed: nn.Parameter
    blocks: nn.ModuleList
    norm: nn.Module
    head: nn.Module

    def num_tokens(self, num_channels: int, img_size: int | tuple[int, int]) -> int:
        """``1 + C * N`` tokens for ``C`` channels of an image of ``img_size`` pixels (padded batches: C_max)."""
        h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
        return 1 + num_channels * (h // self.patch_size) * (w // self.patch_size)

    def _pos_embed(self, grid: tuple[int, int]) -> torch.Tensor:
        return self.pos_embed if grid == self.grid else resample_pos_embed(self.pos_embed, grid)

    @abc.abstractmethod
    def tokenize(
        self, x: torch.Tensor, channels: ChannelSet, channel_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Embedded tokens (B, 1 + C' * N, D) and the channel mask of the kept channels (C' may be < C)."""

    def forward_features(
        self, x: torch.Tensor, channels: ChannelLike, channel_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """All output tokens after the final norm.

        Args:
            x: Images (B, C, H, W); in a padded batch, absent channels are any value (zeros).
            channels: One entry per channel of ``x`` (ChannelSet or list of names / nm).
            channel_mask: Optional (B, C) bool, True where the sample has that channel. Tokens of
                absent channels are masked as keys, so they never change real tokens.

        Returns:
            Tokens (B, 1 + C' * N, D), CLS first, channel-major (C' < C when a family drops channels
            in training, e.g. Hierarchical Channel Sampling).

        Raises:
            ChannelMismatchError: If the mask does not match ``x`` or a channel is unknown.
        """
        cs = self._channels(channels, x)
        if channel_mask is not None and channel_mask.shape != x.shape[:2]:
            raise ChannelMismatchError(f"channel_mask has shape {tuple(channel_mask.shape)}, expected {x.shape[:2]}.")
        seq, channel_mask = self.tokenize(x, cs, channel_mask)
        mask = token_mask(channel_mask, (x.shape[-2] // self.patch_size) * (x.shape[-1] // self.patch_size))
        for block in self.blocks:
            seq = block(seq, attn_mask=mask)
        return self.norm(seq)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Head on the CLS token (identity when ``num_classes`` is 0)."""
        return self.head(features[:, 0])

    def feature_map(
        self, x: torch.Tensor, channels: ChannelLike, channel_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Dense features (B, D, H / p, W / p): patch tokens averaged over each sample's present channels.

        The official ChannelViT code has no dense output (insitro/ChannelViT#17); averaging over channels per
        position is the usual choice for a segmentation decoder.
        """
        grid = (x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size)
        return channel_mean_map(self.forward_features(x, channels, channel_mask), grid, channel_mask)
