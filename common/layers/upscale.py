"""Learned x2 upsampling block of HyperspectralViTs (placed before a segmentation classifier)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["UpscaleBlock"]


class UpscaleBlock(nn.Module):
    """Nearest x2 upsampling, then ``num_layers`` x (Conv3x3 -> ReLU -> BatchNorm).

    Trades channels for resolution: typically ``out_channels = in_channels // 2``. The order
    conv -> ReLU -> BN follows HyperspectralViTs (Růžička & Markham 2025, ``custom_layers.py``).
    Keys: ``conv1, bn1[, conv2, bn2]``.

    Args:
        in_channels: Input feature channels.
        out_channels: Output feature channels.
        num_layers: 1 or 2 convolutions.
        use_batchnorm: BatchNorm after each ReLU (else identity).

    Raises:
        ValueError: If ``num_layers`` is not 1 or 2.
    """

    def __init__(self, in_channels: int, out_channels: int, num_layers: int = 2, use_batchnorm: bool = True):
        super().__init__()
        if num_layers not in (1, 2):
            raise ValueError(f"UpscaleBlock supports num_layers 1 or 2, got {num_layers}.")
        self.num_layers = num_layers
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(out_channels) if use_batchnorm else nn.Identity()
        if num_layers == 2:
            self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)
            self.bn2 = nn.BatchNorm2d(out_channels) if use_batchnorm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Upsample (B, C_in, H, W) to (B, C_out, 2H, 2W)."""
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = self.bn1(F.relu(self.conv1(x)))
        if self.num_layers == 2:
            x = self.bn2(F.relu(self.conv2(x)))
        return x
