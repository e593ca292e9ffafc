"""Streamed per-group statistics (counts, sums, Gram matrices) and per-pixel linear functionals.

A chunk holds rows ``r0:r1`` as a (W, h, C) tensor; every column of a chunk belongs to one group
(see :func:`chunk_groups`), so per-group reductions are a batched product per column followed by an
``index_add`` into the groups. Data are shifted by a per-group reference spectrum close to the mean
before forming Gram matrices (products and sums in float64), so the covariance does not suffer from
cancellation.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from hyperplex.geo.methane.group_stats import SHIFT_SAMPLE_ROWS, GroupStats
from hyperplex.geo.methane.grouping import Chunk, Grouping, chunk_groups, iter_blocks, iter_chunks, read_chunk
from hyperplex.geo.methane.inputs import PreparedCube, require_valid

__all__ = ["GroupStats", "accumulate", "estimate_shift", "group_add", "project"]


def group_add(out: torch.Tensor, gid: torch.Tensor, partial: torch.Tensor) -> torch.Tensor:
    """``out.index_add_(0, gid, partial)`` for the sorted column groups of a chunk, without slow paths.

    One column per group is a plain add; a few long runs of equal ids (tiles) are summed run by run.
    """
    partial = partial.to(out.dtype)
    if gid.numel() == out.shape[0] and bool((gid == torch.arange(gid.numel(), device=gid.device)).all()):
        return out.add_(partial)
    ids, counts = torch.unique_consecutive(gid, return_counts=True)
    if ids.numel() > 64:
        return out.index_add_(0, gid, partial)
    for g, part in zip(ids.tolist(), torch.split(partial, counts.tolist())):
        out[g] += part.sum(0)
    return out


def shifted(chunk: Chunk, gid: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``x - shift[group]`` for a chunk, zero at pixels outside the statistics, float32 (W, h, C)."""
    y = chunk.data - shift.to(torch.float32)[gid][:, None, :]
    return y.mul_(chunk.stats[:, :, None])


def estimate_shift(prepared: PreparedCube, grouping: Grouping, device: torch.device) -> torch.Tensor:
    """Approximate per-group mean spectra from a strided sample of rows (float64, (G, C))."""
    n_groups, n_bands = grouping.n_groups, prepared.n_bands
    total = torch.zeros(n_groups, n_bands, dtype=torch.float64, device=device)
    count = torch.zeros(n_groups, dtype=torch.float64, device=device)
    th = grouping.tile_shape[0] if grouping.kind == "tile" else prepared.shape[0]
    step = max(1, min(th, prepared.shape[0]) // SHIFT_SAMPLE_ROWS)
    for r in range(0, prepared.shape[0], step):
        chunk = _row(prepared, r, device)
        gid = chunk_groups(grouping, r, device)
        y = chunk.data * chunk.stats[:, :, None]
        group_add(total, gid, y.sum(1, dtype=torch.float64))
        group_add(count, gid, chunk.stats.sum(1))
    overall = total.sum(0) / count.sum().clamp(min=1)
    shift = torch.where(count[:, None] > 0, total / count.clamp(min=1)[:, None], overall[None, :])
    return shift.to(torch.float32).to(torch.float64)  # float32-representable: x - shift is exact in float32


def _row(prepared: PreparedCube, r: int, device: torch.device) -> Chunk:
    return read_chunk(prepared, r, r + 1, device)


def accumulate(
    prepared: PreparedCube,
    grouping: Grouping,
    device: torch.device,
    shift: torch.Tensor | None = None,
    valid_out: np.ndarray | None = None,
    chunks: Iterable[Chunk] | None = None,
) -> GroupStats:
    """One pass over the cube: per-group counts, sums and Gram matrices of ``x - shift`` (statistics pixels).

    Args:
        prepared: The cube.
        grouping: Statistics groups.
        device: Compute device.
        shift: Reference spectra (G, C); estimated from a row sample when None.
        valid_out: Optional (H, W) bool array filled with pixel validity (of the output, ``stats_mask`` aside).
        chunks: Chunks to use instead of reading the cube.

    Returns:
        The statistics.

    Raises:
        NoValidDataError: If no pixel is valid.
    """
    shift = estimate_shift(prepared, grouping, device) if shift is None else shift
    n_groups, n_bands = grouping.n_groups, prepared.n_bands
    count = torch.zeros(n_groups, dtype=torch.float64, device=device)
    total = torch.zeros(n_groups, n_bands, dtype=torch.float64, device=device)
    gram = torch.zeros(n_groups, n_bands, n_bands, dtype=torch.float64, device=device)
    if grouping.kind == "tile" and chunks is None:
        _accumulate_tiles(prepared, grouping, device, shift, (count, total, gram), valid_out)
        require_valid(int(count.sum().item()))
        return GroupStats(shift, count, total, gram)
    for chunk in iter_chunks(prepared, grouping, device) if chunks is None else chunks:
        gid = chunk_groups(grouping, chunk.r0, device)
        y64 = shifted(chunk, gid, shift).to(torch.float64)
        if grouping.kind == "tile":
            for c0, c1, g in grouping.segments(chunk.r0):
                seg = y64[c0:c1].reshape(-1, n_bands)
                gram[g] += seg.T @ seg
                total[g] += seg.sum(0)
                count[g] += chunk.stats[c0:c1].sum()
        else:
            group_add(gram, gid, torch.bmm(y64.transpose(1, 2), y64))
            group_add(total, gid, y64.sum(1))
            group_add(count, gid, chunk.stats.sum(1))
        if valid_out is not None:
            valid_out[chunk.r0 : chunk.r1] = chunk.valid.T.cpu().numpy()
    require_valid(int(count.sum().item()))
    return GroupStats(shift, count, total, gram)


def _accumulate_tiles(
    prepared: PreparedCube,
    grouping: Grouping,
    device: torch.device,
    shift: torch.Tensor,
    out: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    valid_out: np.ndarray | None,
) -> None:
    """Tile statistics from channel-first blocks (no transposes): one (C, P) x (P, C) product per tile."""
    count, total, gram = out
    shift32 = shift.to(torch.float32)
    for block in iter_blocks(prepared, grouping, device):
        for c0, c1, g in grouping.segments(block.r0):
            valid = block.stats[:, c0:c1].reshape(-1)
            y = block.data[:, :, c0:c1].reshape(block.data.shape[0], -1) - shift32[g][:, None]
            y64 = y.mul_(valid).to(torch.float64)
            gram[g] += y64 @ y64.T
            total[g] += y64.sum(1)
            count[g] += valid.sum()
        if valid_out is not None:
            valid_out[block.r0 : block.r1] = block.valid.cpu().numpy()


def project(chunk: Chunk, gid: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Linear functionals ``(x - offsets[g]) @ weights[g]`` of every chunk pixel, float32 (W, h, K).

    Args:
        chunk: The chunk.
        gid: Group of each chunk column (W,).
        offsets: Per-group offsets (G, C).
        weights: Per-group functionals (G, C, K).
    """
    y = chunk.data - offsets.to(torch.float32)[gid][:, None, :]
    return torch.bmm(y, weights.to(torch.float32)[gid])
