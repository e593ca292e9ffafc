"""Task heads on top of any hyperplex model, through its public API only.

A :class:`TaskModel` turns ``model(x, channels)`` or ``model.feature_map(x, channels)`` into the
task's prediction:

- ``direct``: the model's own output already is the prediction (a backbone built with
  ``num_classes``, a segmenter's per-pixel logits, MIPHEI's marker maps);
- ``vector``: a linear head on the model's embedding (B, D);
- ``pooled``: a linear head on the spatial mean of ``feature_map`` (B, D, h, w);
- ``dense``: a small convolutional head on ``feature_map``, upsampled to the input size.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hyperplex.common.errors import InvalidParameterError

__all__ = ["MODES", "DenseHead", "TaskModel", "make_head"]

MODES = ("direct", "vector", "pooled", "dense")


class DenseHead(nn.Module):
    """Conv 3x3 -> GELU -> conv 1x1 on a (B, D, h, w) feature map, bilinearly upsampled to the input size.

    Args:
        in_dim: Feature channels D.
        out_dim: Output channels (classes or target channels).
        hidden: Hidden channels (default ``max(out_dim, D // 2)``).
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or max(out_dim, in_dim // 2)
        self.conv = nn.Conv2d(in_dim, hidden, 3, padding=1)
        self.proj = nn.Conv2d(hidden, out_dim, 1)

    def forward(self, features: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Per-pixel outputs (B, out_dim, *size)."""
        out = self.proj(F.gelu(self.conv(features)))
        return F.interpolate(out, size=size, mode="bilinear", align_corners=False)


def make_head(mode: str, in_dim: int, out_dim: int) -> nn.Module | None:
    """The head module of ``mode`` (None for ``direct``).

    Raises:
        InvalidParameterError: For an unknown mode.
    """
    if mode not in MODES:
        raise InvalidParameterError(f"Head mode must be one of {list(MODES)}; got {mode!r}.")
    if mode == "direct":
        return None
    return DenseHead(in_dim, out_dim) if mode == "dense" else nn.Linear(in_dim, out_dim)


class TaskModel(nn.Module):
    """A hyperplex model plus the head that makes it predict the task's output.

    Args:
        model: The hyperplex model (``model(x, channels)``; ``feature_map`` for the map modes).
        mode: One of :data:`MODES`.
        head: The head (None for ``direct``).
        head_spec: ``{"mode", "in_dim", "out_dim"}``, saved with the head so it can be rebuilt.
    """

    def __init__(self, model: nn.Module, mode: str, head: nn.Module | None, head_spec: dict[str, Any]):
        super().__init__()
        self.model, self.mode, self.head, self.head_spec = model, mode, head, head_spec

    def _call(self, fn: Any, x: torch.Tensor, channels: Any, channel_mask: torch.Tensor | None) -> Any:
        return fn(x, channels) if channel_mask is None else fn(x, channels, channel_mask)

    def forward(self, x: torch.Tensor, channels: Any, channel_mask: torch.Tensor | None = None) -> Any:
        """The prediction for a (B, C, H, W) batch: (B, K) for image-level tasks, (B, K, H, W) per pixel."""
        if self.mode in ("direct", "vector"):
            out = self._call(self.model, x, channels, channel_mask)
            return out if self.head is None else self.head(out)
        features = self._call(self.model.feature_map, x, channels, channel_mask)
        if self.mode == "pooled":
            return self.head(features.mean(dim=(-2, -1)))
        return self.head(features, x.shape[-2:])
