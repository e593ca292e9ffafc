"""EfficientViT building blocks: conv blocks and multi-scale ReLU linear attention (LiteMLA).

Conv-norm-act, depth-wise separable and inverted-residual convolutions, and LiteMLA.

Cai et al., "EfficientViT: Multi-Scale Linear Attention for High-Resolution Dense Prediction",
ICCV 2023. Attention cost is linear in the number of pixels: ``softmax`` is replaced by a ReLU
kernel, so ``(K^T V)`` (head_dim x head_dim) is formed once per head.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ConvNormAct", "DSConv", "EfficientViTBlock", "LiteMLA", "MBConv", "Residual"]

_ACTS = {"hswish": nn.Hardswish, "relu": nn.ReLU, "relu6": nn.ReLU6, "silu": nn.SiLU, "gelu": nn.GELU}


class ConvNormAct(nn.Module):
    """``act(norm(conv(drop(x))))`` with "same" padding. Keys: ``conv, norm``.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: Odd kernel size.
        stride: Stride.
        groups: Convolution groups.
        bias: Bias on the convolution.
        norm: Use BatchNorm.
        act: Activation name (``hswish``, ``relu``, ``relu6``, ``silu``, ``gelu``) or None.
        dropout: Dropout2d probability on the input.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        bias: bool = False,
        norm: bool = True,
        act: str | None = "relu",
        dropout: float = 0.0,
    ):
        super().__init__()
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, groups=groups, bias=bias
        )
        self.norm = nn.BatchNorm2d(out_channels) if norm else nn.Identity()
        self.act = _ACTS[act]() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply conv, norm and activation to (B, C, H, W)."""
        return self.act(self.norm(self.conv(self.dropout(x))))


class Residual(nn.Module):
    """``main(x) + x`` (or just ``main(x)`` when ``shortcut`` is False). Key: ``main``.

    Args:
        main: The residual branch.
        shortcut: Add the identity shortcut.
    """

    def __init__(self, main: nn.Module, shortcut: bool = True):
        super().__init__()
        self.main = main
        self.shortcut = shortcut

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the branch and the optional shortcut."""
        return self.main(x) + x if self.shortcut else self.main(x)


class DSConv(nn.Module):
    """Depth-wise 3x3 conv (norm, act) then point-wise 1x1 conv (norm, no act).

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        stride: Stride of the depth-wise conv.
        act: Activation after the depth-wise conv.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, act: str = "hswish"):
        super().__init__()
        self.depth_conv = ConvNormAct(in_channels, in_channels, 3, stride, groups=in_channels, act=act)
        self.point_conv = ConvNormAct(in_channels, out_channels, 1, act=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the two convolutions."""
        return self.point_conv(self.depth_conv(x))


class MBConv(nn.Module):
    """Inverted residual branch: 1x1 expand (act) -> depth-wise 3x3 (act) -> 1x1 project.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        stride: Stride of the depth-wise conv.
        expand_ratio: Hidden width relative to ``in_channels``.
        act: Activation after the first two convs.
        fewer_norm: Biases instead of BatchNorm on the first two convs (EfficientViT's
            ``fewer_norm``, used in the attention stages).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        expand_ratio: float = 4.0,
        act: str = "hswish",
        fewer_norm: bool = False,
    ):
        super().__init__()
        mid = round(in_channels * expand_ratio)
        self.inverted_conv = ConvNormAct(in_channels, mid, 1, bias=fewer_norm, norm=not fewer_norm, act=act)
        self.depth_conv = ConvNormAct(mid, mid, 3, stride, groups=mid, bias=fewer_norm, norm=not fewer_norm, act=act)
        self.point_conv = ConvNormAct(mid, out_channels, 1, act=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply expand, depth-wise and project convolutions."""
        return self.point_conv(self.depth_conv(self.inverted_conv(x)))


class LiteMLA(nn.Module):
    """Lightweight multi-scale ReLU linear attention over all pixels of a feature map.

    q, k, v come from a 1x1 conv; each extra scale aggregates them with a depth-wise ``s x s``
    conv and a grouped 1x1 conv, giving additional heads. Attention per head is
    ``relu(q) (relu(k)^T [v, 1]) `` normalised by its last column, computed in float32.

    Args:
        channels: Input and output channels.
        head_dim: Width of each head.
        heads_ratio: Scales the number of heads ``channels // head_dim``.
        scales: Kernel sizes of the aggregation convs.
        eps: Stabiliser of the normalisation.
    """

    def __init__(
        self,
        channels: int,
        head_dim: int = 16,
        heads_ratio: float = 1.0,
        scales: tuple[int, ...] = (5,),
        eps: float = 1e-15,
    ):
        super().__init__()
        heads = int(channels // head_dim * heads_ratio)
        total = heads * head_dim
        self.head_dim = head_dim
        self.eps = eps
        self.qkv = ConvNormAct(channels, 3 * total, 1, norm=False, act=None)
        self.aggreg = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(3 * total, 3 * total, s, padding=s // 2, groups=3 * total, bias=False),
                nn.Conv2d(3 * total, 3 * total, 1, groups=3 * heads, bias=False),
            )
            for s in scales
        )
        self.proj = ConvNormAct(total * (1 + len(scales)), channels, 1, act=None)

    def linear_attention(self, qkv: torch.Tensor) -> torch.Tensor:
        """ReLU linear attention on stacked ``(B, heads*3*head_dim, H, W)`` q/k/v maps."""
        b, _, h, w = qkv.shape
        d = self.head_dim
        qkv = qkv.float().reshape(b, -1, 3 * d, h * w).transpose(-1, -2)  # (B, heads, N, 3d)
        q, k, v = F.relu(qkv[..., :d]), F.relu(qkv[..., d : 2 * d]), qkv[..., 2 * d :]
        v = F.pad(v, (0, 1), value=1.0)  # extra column of ones gives the normaliser
        out = q @ (k.transpose(-1, -2) @ v)  # (B, heads, N, d+1)
        out = out[..., :-1] / (out[..., -1:] + self.eps)
        return out.transpose(-1, -2).reshape(b, -1, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend over all pixels of (B, C, H, W); returns (B, C, H, W)."""
        qkv = self.qkv(x)
        multi = torch.cat([qkv, *(op(qkv) for op in self.aggreg)], dim=1)
        return self.proj(self.linear_attention(multi).to(x.dtype))


class EfficientViTBlock(nn.Module):
    """Residual LiteMLA (context) then residual MBConv (local). Keys: ``context, local``.

    Args:
        channels: Feature channels.
        head_dim: LiteMLA head width.
        expand_ratio: MBConv expansion.
        act: MBConv activation.
    """

    def __init__(self, channels: int, head_dim: int = 16, expand_ratio: float = 4.0, act: str = "hswish"):
        super().__init__()
        self.context = LiteMLA(channels, head_dim)
        self.local = MBConv(channels, channels, 1, expand_ratio, act, fewer_norm=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the two residual sub-blocks."""
        x = x + self.context(x)
        return x + self.local(x)
