"""Reuse a filter run's per-column statistics for a subset of its pixels, instead of a second pass.

The detection pipeline needs the per-column statistics of the plume-free pixels after the filter ran
(:mod:`hyperplex.geo.detect.background_filter`). Those pixels are the filter's own statistics pixels less a
few thousand plume pixels, so the filter's sums can be *downdated*: with ``y = x - shift[column]``,

    count' = count - |D|,  sum' = sum - sum_D y,  gram' = gram - sum_D y y^T

over the removed pixels ``D``, the same numbers a fresh pass over the subset would give (up to float64
rounding), at the cost of the removed pixels only. A filter run publishes its statistics inside
:func:`capture_column_stats` (column-wise Mag1c does, both engines); :func:`subset_stats` downdates them
when they provably describe the same data: the same array object, the same bands, one group per detector
column, and a pixel set that contains the subset.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np

from hyperplex.common.arrays import materialize
from hyperplex.geo.methane.backend import like, to_numpy
from hyperplex.geo.methane.group_stats import GroupStats
from hyperplex.geo.methane.groups import Grouping
from hyperplex.geo.methane.inputs import PreparedCube

__all__ = ["CapturedStats", "capture_column_stats", "publish_column_stats", "subset_stats", "wants_column_stats"]

_BOX: ContextVar[list[CapturedStats] | None] = ContextVar("hyperplex_column_stats", default=None)


@dataclass(frozen=True)
class CapturedStats:
    """Per-column statistics of one filter run and what they cover.

    Attributes:
        stats: One group per detector column, of ``y = x - shift``.
        pixels: ``(H, W)`` bool, the pixels summed.
        source: The array the filter read (compared by identity).
        bands: The filter's band indices into ``source``.
    """

    stats: GroupStats
    pixels: np.ndarray
    source: Any
    bands: np.ndarray


@contextmanager
def capture_column_stats() -> Iterator[list[CapturedStats]]:
    """Collect the column statistics that filter runs publish inside the block (a list, in run order)."""
    box: list[CapturedStats] = []
    token = _BOX.set(box)
    try:
        yield box
    finally:
        _BOX.reset(token)


def wants_column_stats(grouping: Grouping) -> bool:
    """Whether a run with this grouping would have its statistics recorded by :func:`publish_column_stats`.

    True when a capture is active and the statistics are one group per detector column; a filter can skip
    collecting what it would otherwise publish.
    """
    return _BOX.get() is not None and grouping.kind == "column" and grouping.columns == 1


def publish_column_stats(stats: GroupStats, pixels_wh: Any, prepared: PreparedCube, grouping: Grouping) -> None:
    """Record a run's statistics when :func:`wants_column_stats`."""
    box = _BOX.get()
    if not wants_column_stats(grouping):
        return
    box.append(CapturedStats(stats, to_numpy(pixels_wh.T), prepared.source, _band_indices(prepared)))


def subset_stats(captured: list[CapturedStats], prepared: PreparedCube, usable: np.ndarray) -> GroupStats | None:
    """The statistics of the ``usable`` pixels of ``prepared``, downdated from a captured run; None if none fits."""
    bands = _band_indices(prepared)
    for item in captured:
        fits = item.source is prepared.source and np.array_equal(item.bands, bands)
        if fits and item.pixels.shape == usable.shape and not (usable & ~item.pixels).any():
            return _downdate(item, prepared, item.pixels & ~usable)
    return None


def _downdate(item: CapturedStats, prepared: PreparedCube, removed: np.ndarray) -> GroupStats:
    """``item.stats`` less the pixels ``removed`` (see the module docstring)."""
    stats = item.stats
    rows, cols = np.nonzero(removed)
    order = np.argsort(cols, kind="stable")
    rows, cols = rows[order], cols[order]
    shift32 = to_numpy(stats.shift).astype(np.float32)
    x = np.asarray(materialize(prepared.source[:, rows, cols]), dtype=np.float32)[item.bands].T  # (N, B)
    y = (x - shift32[cols]).astype(np.float64)  # as the resident cube: float32 difference, float64 products
    count, total, gram = (to_numpy(v).copy() for v in (stats.count, stats.sum, stats.gram))
    starts = np.flatnonzero(np.r_[True, cols[1:] != cols[:-1]]) if cols.size else np.zeros(0, int)
    for a, b in zip(starts, [*starts[1:], cols.size]):
        c = cols[a]
        count[c] -= b - a
        total[c] -= y[a:b].sum(0)
        gram[c] -= y[a:b].T @ y[a:b]
    return GroupStats(stats.shift, like(stats.count, count), like(stats.count, total), like(stats.count, gram))


def _band_indices(prepared: PreparedCube) -> np.ndarray:
    return np.arange(int(prepared.source.shape[0]))[prepared.bands]
