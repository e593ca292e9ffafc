"""Multi-crop views for self-distillation, on (B, C, H, W) batches of any channel count.

All randomness comes from torch's global generator (saved in checkpoints, so a resumed run draws
the same views).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["discard_channels", "jitter_channels", "random_resized_crop"]


def _uniform(n: int, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(n)


def random_resized_crop(x: torch.Tensor, size: int, scale: tuple[float, float]) -> torch.Tensor:
    """One random crop per sample (area fraction in ``scale``, aspect 3/4..4/3), resized to ``size``, random h-flip.

    Args:
        x: Batch (B, C, H, W).
        size: Output side in pixels.
        scale: Range of the crop's area as a fraction of the image.

    Returns:
        (B, C, size, size), bilinear.
    """
    b = x.shape[0]
    area = _uniform(b, *scale)
    ratio = torch.exp(_uniform(b, math.log(3 / 4), math.log(4 / 3)))
    half_w = torch.sqrt(area * ratio).clamp(max=1.0)  # half extent in [-1, 1] coordinates = side fraction
    half_h = torch.sqrt(area / ratio).clamp(max=1.0)
    cx = (1 - half_w) * (2 * torch.rand(b) - 1)
    cy = (1 - half_h) * (2 * torch.rand(b) - 1)
    flip = torch.where(torch.rand(b) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = half_w * flip, cx
    theta[:, 1, 1], theta[:, 1, 2] = half_h, cy
    grid = F.affine_grid(theta.to(x), [b, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def jitter_channels(x: torch.Tensor, strength: float) -> torch.Tensor:
    """Per-sample, per-channel random gain ``1 +- strength`` and offset ``+- strength`` (standardised data)."""
    b, c = x.shape[:2]
    gain = (1 + strength * (2 * torch.rand(b, c, 1, 1) - 1)).to(x)
    offset = (strength * (2 * torch.rand(b, c, 1, 1) - 1)).to(x)
    return x * gain + offset


def discard_channels(x: torch.Tensor, probability: float) -> tuple[torch.Tensor, torch.Tensor]:
    """ChAda-ViT's ``RandomDiscarder``: with ``probability``, one random channel of a sample is removed.

    Removed channels are zeroed and marked False in the returned (B, C) channel mask (images with a
    single channel keep it).

    Returns:
        ``(x, channel_mask)``.
    """
    b, c = x.shape[:2]
    mask = torch.ones(b, c, dtype=torch.bool)
    drop = (torch.rand(b) < probability) & (c > 1)
    which = torch.randint(0, c, (b,))
    mask[torch.arange(b)[drop], which[drop]] = False
    mask = mask.to(x.device)
    return x * mask[:, :, None, None].to(x.dtype), mask
