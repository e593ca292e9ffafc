"""The cube read once into a resident pixel-major array, validated and shifted, by a compiled kernel (CPU).

Column-wise Mag1c keeps the selected bands in memory as (W, H, C) float32 (one detector column after the
other). The torch path builds it in three passes (transpose, validity, then shift and sums); here one
kernel reads each row chunk of the (C, H, W) cube once and writes ``y = x - m[group]`` (zero where invalid),
the validity and the per-column sums, counts and Gram matrices (each pixel's y y^T added while its bands are
in cache: faster than a float64 matrix product over the buffer afterwards). Values are the same as the torch
path's: float32 subtraction of the same float32 reference spectra (:func:`sampled_shift`, the rows and sums of
:func:`hyperplex.geo.methane.stats.estimate_shift`), float64 sums. Everything here is numpy: the compiled
path imports no torch.

Validity is that of :func:`.resident.read_pixel_major`: every band finite (the float64 sum of the bands is
finite), not all zero, no band equal to the fill value, not masked; the sums and counts cover the valid
pixels outside the ``stats_mask``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from hyperplex.common import warm_memory
from hyperplex.geo.methane.group_stats import SHIFT_SAMPLE_ROWS, GroupStats
from hyperplex.geo.methane.groups import Grouping
from hyperplex.geo.methane.inputs import PreparedCube, require_valid
from hyperplex.geo.methane.mag1c_filter.jit import jitable, kernel, numba_or_none, run_kernel
from hyperplex.geo.methane.mag1c_filter.resident_cube import ResidentCube
from hyperplex.geo.methane.stats_capture import publish_column_stats

__all__ = [
    "GRAM_BATCH",
    "add_outer_products",
    "column_stats",
    "ingest_columns",
    "ingest_kernel",
    "read_compiled",
    "sampled_shift",
]


def read_compiled(prepared: PreparedCube, grouping: Grouping) -> tuple[ResidentCube, GroupStats]:
    """The resident cube, shifted, and its column statistics (numpy), read by one compiled kernel (CPU, numba)."""
    shift = sampled_shift(prepared, grouping)
    buffer, valid, stats, (sums, counts, gram) = ingest_columns(prepared, grouping.column_groups(), shift)
    resident = ResidentCube(buffer, 0, valid, valid if prepared.stats_mask is None else stats)
    column = column_stats(sums, counts, gram, shift, grouping)
    publish_column_stats(column, resident.stats, prepared, grouping)
    return resident, column


@functools.cache
def ingest_kernel() -> Any:
    """The compiled kernel of :func:`ingest_columns` (built on first use: numba is imported then)."""
    numba = numba_or_none()

    @kernel(parallel=True)
    def ingest(src, r0, mask, stats_mask, fill, shift, groups,  # pragma: no cover
               out, valid, stats, sums, counts, gram):  # fmt: skip
        n_bands, rows, width = src.shape
        use_mask = mask.shape[0] > 0
        use_stats_mask = stats_mask.shape[0] > 0
        use_gram = gram.shape[0] > 0
        for w in numba.prange(width):
            g = groups[w]
            spectrum = np.empty(n_bands, dtype=np.float32)
            batch = np.zeros((GRAM_BATCH, n_bands))  # statistics pixels waiting for add_outer_products
            held = 0
            for k in range(rows):
                total = 0.0  # float64: finite for any finite float32 spectrum, NaN or inf otherwise
                fills = 0
                nonzero = 0
                for c in range(n_bands):
                    value = src[c, k, w]
                    spectrum[c] = value
                    total += value
                    fills |= value == fill
                    nonzero |= value != 0.0
                r = r0 + k
                ok = np.isfinite(total) and fills == 0 and nonzero != 0 and not (use_mask and mask[k, w])
                valid[w, r] = ok
                counted = ok and not (use_stats_mask and stats_mask[k, w])
                stats[w, r] = counted
                if ok:
                    for c in range(n_bands):
                        y = spectrum[c] - shift[g, c]
                        out[w, r, c] = y
                        batch[held, c] = y  # kept only if the pixel is counted (``held`` advances)
                        if counted:
                            sums[w, c] += y
                    if counted:
                        counts[w] += 1
                        if use_gram:
                            held += 1
                            if held == GRAM_BATCH:
                                add_outer_products(gram[w], batch)
                                held = 0
                else:
                    out[w, r, :] = 0.0
            if held:
                batch[held:] = 0.0  # zero rows add exact zeros
                add_outer_products(gram[w], batch)

    return ingest


#: Pixels whose outer products :func:`add_outer_products` adds to a Gram matrix in one sweep over it.
GRAM_BATCH = 4


@jitable
def add_outer_products(gram: np.ndarray, batch: np.ndarray) -> None:
    """``gram += batch.T @ batch`` for :data:`GRAM_BATCH` float64 spectra ``batch`` (4, C), one sweep over ``gram``.

    Float32 values have exact float64 products, so this differs from a matrix product only in the order of
    the sums; four pixels per sweep load and store each Gram entry once for four products.
    """
    first, second, third, fourth = batch[0], batch[1], batch[2], batch[3]
    for a in range(gram.shape[0]):
        row, p, q, r, s = gram[a], first[a], second[a], third[a], fourth[a]
        for b in range(gram.shape[1]):
            row[b] += p * first[b] + q * second[b] + r * third[b] + s * fourth[b]


def ingest_columns(
    prepared: PreparedCube, column_groups: np.ndarray, shift: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Read the selected bands into a shifted pixel-major buffer, with the column statistics (needs numba).

    Args:
        prepared: The cube (CPU).
        column_groups: Group of each column (W,).
        shift: Per-group reference spectra (G, C), float64 and float32-representable.

    Returns:
        The (W * H, C) float32 buffer (row ``w * H + r`` holds ``x - shift`` of pixel (r, w), zero
        where invalid), the validity (W, H), the statistics pixels (W, H: valid and not in ``stats_mask``),
        and their per-column sums (W, C), counts (W,) and Gram matrices (W, C, C), float64.
    """
    height, width = prepared.shape
    n_bands = prepared.n_bands
    buffer = warm_memory.empty((width * height, n_bands), np.float32)  # e.g. reserved by the CLI at start-up
    cube = buffer.reshape(width, height, n_bands)
    valid, stats = np.empty((width, height), dtype=bool), np.empty((width, height), dtype=bool)
    sums, counts, gram = np.zeros((width, n_bands)), np.zeros(width), np.zeros((width, n_bands, n_bands))
    for r0, r1 in prepared.row_chunks():
        out = (cube, valid, stats, sums, counts, gram)
        _run_ingest(prepared.read(r0, r1), r0, prepared, slice(r0, r1), column_groups, shift, out)
    return buffer, valid, stats, (sums, counts, gram)


def _run_ingest(data: np.ndarray, at: int, prepared: PreparedCube, rows: slice | np.ndarray,
                column_groups: np.ndarray, shift: np.ndarray, out: tuple[np.ndarray, ...]) -> None:  # fmt: skip
    """The ingest kernel on ``data`` (C, h, W), the cube's ``rows``, written from row ``at`` of ``out``."""
    width = prepared.shape[1]
    masks = (_rows(prepared.mask, rows, width), _rows(prepared.stats_mask, rows, width))
    fill = np.float32(np.nan if prepared.fill_value is None else prepared.fill_value)
    groups = np.ascontiguousarray(column_groups, dtype=np.int64)
    shift32 = np.ascontiguousarray(shift, dtype=np.float32)
    run_kernel(ingest_kernel(), data, at, *masks, fill, shift32, groups, *out)


def sampled_shift(prepared: PreparedCube, grouping: Grouping) -> np.ndarray:
    """Approximate per-group mean spectra from a strided sample of rows, float64 (G, C), float32-representable.

    The rows, the statistics pixels and the order of the float64 sums (row by row) are those of
    :func:`hyperplex.geo.methane.stats.estimate_shift` (column groups), so both give the same spectra; the
    sampled rows go through the ingest kernel in one call.
    """
    (height, width), n_bands, n_groups = prepared.shape, prepared.n_bands, grouping.n_groups
    rows = np.arange(0, height, max(1, height // SHIFT_SAMPLE_ROWS))
    data = np.stack([prepared.read(int(r), int(r) + 1)[:, 0] for r in rows], axis=1)  # (C, n, W)
    values = np.empty((width, rows.size, n_bands), np.float32)
    valid, counted = np.empty((width, rows.size), bool), np.empty((width, rows.size), bool)
    scratch = (values, valid, counted, np.zeros((width, n_bands)), np.zeros(width), np.zeros((0, 0, 0)))
    groups = grouping.column_groups()
    _run_ingest(data, 0, prepared, rows, groups, np.zeros((n_groups, n_bands)), scratch)
    total, count = np.zeros((n_groups, n_bands)), np.zeros(n_groups)
    for k in range(rows.size):
        _add_groups(total, groups, (values[:, k] * counted[:, k, None]).astype(np.float64))
        _add_groups(count, groups, counted[:, k].astype(np.float64))
    overall = total.sum(0) / max(count.sum(), 1.0)
    shift = np.where(count[:, None] > 0, total / count.clip(min=1)[:, None], overall[None, :])
    return shift.astype(np.float32).astype(np.float64)


def column_stats(
    sums: np.ndarray, counts: np.ndarray, gram: np.ndarray, shift: np.ndarray, grouping: Grouping
) -> GroupStats:
    """Column-mode statistics from per-column sums of ``y = x - shift`` over the statistics pixels.

    Args:
        sums: Per-column sums of y (W, C), float64.
        counts: Per-column statistics pixels (W,), float64.
        gram: Per-column sums of y y^T (W, C, C), float64.
        shift: Per-group reference spectra (G, C).
        grouping: Column grouping.

    Returns:
        The statistics of each column group, numpy.

    Raises:
        NoValidDataError: If no pixel is left for the statistics.
    """
    require_valid(int(counts.sum()))
    groups, n_groups, n_bands = grouping.column_groups(), grouping.n_groups, sums.shape[1]
    if n_groups == groups.size:  # one column per group (Mag1c's default): the sums are the groups' already
        return GroupStats(shift, counts, sums, gram)
    total, count, group_gram = np.zeros((n_groups, n_bands)), np.zeros(n_groups), np.zeros((n_groups, n_bands, n_bands))
    _add_groups(total, groups, sums)
    _add_groups(count, groups, counts)
    _add_groups(group_gram, groups, gram)
    return GroupStats(shift, count, total, group_gram)


def _add_groups(out: np.ndarray, groups: np.ndarray, values: np.ndarray) -> None:
    """``out[g] += values[i]`` for every ``i`` with ``groups[i] == g`` (``groups`` non-decreasing)."""
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    out[groups[starts]] += values if starts.size == groups.size else np.add.reduceat(values, starts, axis=0)


def _rows(mask: np.ndarray | None, rows: slice | np.ndarray, width: int) -> np.ndarray:
    """The ``rows`` of a (H, W) mask for the kernel; an empty (0, W) array stands for no mask."""
    return np.zeros((0, width), dtype=bool) if mask is None else np.ascontiguousarray(mask[rows], dtype=bool)
