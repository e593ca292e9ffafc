"""Hierarchical Channel Sampling (HCS), the ChannelViT training-time channel dropout.

Bao et al., "Channel Vision Transformers: An Image Is Worth 1 x 16 x 16 Words" (ICLR 2024),
https://arxiv.org/abs/2309.16108. As in the official ``hcs_channel_vit.py``: once per batch, draw the
number of kept channels ``m`` uniformly from ``1..C``, then ``m`` distinct channels uniformly; every
sample of the batch keeps the same channels, the others are removed (not zeroed, no rescaling).
So ``P(m = k) = 1 / C`` and, given ``m``, every ``m``-subset is equally likely; channel ``c`` is kept
with probability ``(C + 1) / (2 C)``.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["HierarchicalChannelSampler"]


class HierarchicalChannelSampler(nn.Module):
    """Pick a random channel subset for the batch (training mode only).

    Args:
        enabled: Sample in training mode; in eval mode (or disabled) all channels are kept.
        min_channels: Smallest ``m`` drawn (1 in the paper).
        seed: Seed of the sampler's own generator (None: use torch's global RNG).
    """

    def __init__(self, enabled: bool = True, min_channels: int = 1, seed: int | None = None):
        super().__init__()
        self.enabled = enabled
        self.min_channels = min_channels
        self.generator = None if seed is None else torch.Generator().manual_seed(seed)

    def sample(self, num_channels: int) -> torch.Tensor:
        """Draw sorted channel indices: ``m ~ U{min_channels..C}``, then an ``m``-subset uniformly."""
        low = min(self.min_channels, num_channels)
        m = int(torch.randint(low, num_channels + 1, (1,), generator=self.generator))
        subset = torch.randperm(num_channels, generator=self.generator)[:m]
        return subset.sort().values

    def forward(self, num_channels: int) -> torch.Tensor | None:
        """Indices of the channels to keep for this batch, or None to keep all (eval / disabled)."""
        if not (self.training and self.enabled) or num_channels <= 1:
            return None
        return self.sample(num_channels)
