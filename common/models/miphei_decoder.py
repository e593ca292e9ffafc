"""ViTMatte-style detail-capture decoder with one head per marker (MIPHEI-ViT).

Yao et al., "ViTMatte", Information Fusion 2024; Balezo et al., "MIPHEI-ViT", arXiv 2505.10294.
A light conv stream extracts detail features from the image at strides 2, 4, 8; the ViT features
(stride 16) are upsampled x2 four times, each time concatenated with the detail features of that
resolution (finally the raw image) and fused by a 3x3 conv. Every marker has its own head: an
attention gate, a 3x3 conv to one channel and an output activation (tanh in MIPHEI-ViT).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hyperplex.common.layers.mlp import activation

__all__ = ["ConvBNReLU", "DetailCaptureDecoder", "MarkerHead"]


class ConvBNReLU(nn.Module):
    """3x3 convolution (no bias), BatchNorm, ReLU. Keys: ``conv, bn``.

    Args:
        in_chans: Input channels.
        out_chans: Output channels.
        stride: Stride (2 in the conv stream, 1 in fusion blocks).
    """

    def __init__(self, in_chans: int, out_chans: int, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_chans, out_chans, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_chans)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply conv, norm and ReLU."""
        return F.relu(self.bn(self.conv(x)))


class MarkerHead(nn.Module):
    """One output channel: optional attention gate ``x * sigmoid(g(x))``, 3x3 conv, activation.

    Args:
        in_chans: Decoder channels.
        use_attention: Use the attention gate (1x1 conv to C/2, BN, ReLU, 1x1 conv to 1, sigmoid).
        act: Output activation name (``tanh`` in MIPHEI-ViT) or None for raw values.
    """

    def __init__(self, in_chans: int, use_attention: bool = True, act: str | None = "tanh"):
        super().__init__()
        self.use_attention = use_attention
        if use_attention:
            self.gate_reduce = nn.Conv2d(in_chans, in_chans // 2, 1)
            self.gate_norm = nn.BatchNorm2d(in_chans // 2)
            self.gate_out = nn.Conv2d(in_chans // 2, 1, 1)
        self.conv = nn.Conv2d(in_chans, 1, 3, padding=1)
        self.act = activation(act) if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map decoder features (B, C, H, W) to one marker channel (B, 1, H, W)."""
        if self.use_attention:
            x = x * torch.sigmoid(self.gate_out(F.relu(self.gate_norm(self.gate_reduce(x)))))
        return self.act(self.conv(x))


class DetailCaptureDecoder(nn.Module):
    """Fuse stride-16 ViT features with image detail features up to full resolution; one head per marker.

    Args:
        embed_dim: Channels of the ViT feature map.
        in_chans: Image channels.
        num_markers: Output channels (heads).
        convstream_out: Channels of the conv stream at strides 2, 4, 8.
        fusion_out: Channels after each of the four fusion steps (strides 8, 4, 2, 1).
        use_attention: Attention gate in each head.
        act: Output activation of each head.

    Raises:
        ValueError: If ``fusion_out`` does not have one more entry than ``convstream_out``.
    """

    def __init__(
        self,
        embed_dim: int,
        in_chans: int = 3,
        num_markers: int = 16,
        convstream_out: Sequence[int] = (48, 96, 192),
        fusion_out: Sequence[int] = (256, 128, 64, 32),
        use_attention: bool = True,
        act: str | None = "tanh",
    ):
        super().__init__()
        if len(fusion_out) != len(convstream_out) + 1:
            raise ValueError(f"fusion_out needs {len(convstream_out) + 1} entries; got {len(fusion_out)}.")
        stream = [in_chans, *convstream_out]
        self.detail = nn.ModuleList(ConvBNReLU(a, b, stride=2) for a, b in itertools.pairwise(stream))
        fus_in = [embed_dim, *fusion_out[:-1]]
        self.fusions = nn.ModuleList(ConvBNReLU(f + d, out) for f, d, out in zip(fus_in, reversed(stream), fusion_out))
        self.heads = nn.ModuleList(MarkerHead(fusion_out[-1], use_attention, act) for _ in range(num_markers))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """MIPHEI-ViT decoder init: conv weights N(0, 0.02), zero biases, BN weights N(1, 0.02)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, features: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """ViT features (B, D, H/16, W/16) and image (B, C, H, W) -> markers (B, M, H, W)."""
        details = [image]
        for conv in self.detail:
            details.append(conv(details[-1]))
        x = features
        for fuse, detail in zip(self.fusions, reversed(details)):
            up = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            x = fuse(torch.cat([detail, up], dim=1))
        return torch.cat([head(x) for head in self.heads], dim=1)
