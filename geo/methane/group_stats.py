"""Per-group sufficient statistics (counts, sums, Gram matrices) of shifted data, in numpy or torch.

The same class serves the torch engines (tensors on their device) and the compiled CPU path (numpy arrays,
no torch import): its methods use only what numpy and torch spell alike (see :mod:`.backend`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["SHIFT_SAMPLE_ROWS", "GroupStats"]

#: Rows read (at most) to estimate the per-group reference spectra (the shift).
SHIFT_SAMPLE_ROWS = 64


@dataclass
class GroupStats:
    """Per-group sufficient statistics of shifted data ``y = x - shift``.

    Attributes:
        shift: Reference spectra, float64 (G, C).
        count: Valid pixels per group, float64 (G,).
        sum: Sum of y over valid pixels, float64 (G, C).
        gram: Sum of y y^T over valid pixels, float64 (G, C, C).
    """

    shift: Any
    count: Any
    sum: Any
    gram: Any

    @property
    def mean(self) -> Any:
        """Per-group mean spectrum (G, C), float64 (the shift where a group is empty)."""
        return self.shift + self.sum / self.count.clip(min=1)[:, None]

    def merged(self) -> GroupStats:
        """All groups pooled into one, shifted by the count-weighted mean of the shifts (exact for any shifts)."""
        n = self.count[:, None]
        common = (self.shift * n).sum(0) / self.count.sum().clip(min=1)
        d = self.shift - common  # x - common = y + d per group
        total = self.sum + n * d
        cross = d.T @ self.sum  # sums over groups of the per-group outer products, as (C, G) x (G, C) products
        gram = self.gram.sum(0) + cross + cross.T + (n * d).T @ d
        return GroupStats(common[None], self.count.sum()[None], total.sum(0)[None], gram[None])

    def covariance(self, ddof: int = 0) -> Any:
        """Per-group covariance (G, C, C), float64, dividing by ``count - ddof``."""
        n = self.count.clip(min=1)[:, None, None]
        mu = self.sum[:, :, None] / n
        scatter = self.gram - n * mu @ mu.mT
        return scatter / (self.count[:, None, None] - ddof).clip(min=1)

    def correlation(self) -> Any:
        """Per-group second moment E[x x^T] (G, C, C), float64 (exact for any shift)."""
        n = self.count.clip(min=1)[:, None, None]
        s = self.shift[:, :, None]
        raw = self.gram + s @ self.sum[:, None, :] + self.sum[:, :, None] @ s.mT
        return raw / n + s @ s.mT * (self.count[:, None, None] > 0)
