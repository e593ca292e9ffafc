"""The resident cube of column-wise Mag1c: the selected bands read once, pixel-major, shifted in place.

Pixel ``(r, w)`` is row ``lead + w * H + r`` of a (lead + W * H, C) float32 buffer (one detector column after
the other), so a column group's pixels are contiguous. After the statistics pass the buffer holds
``y = x - m[group]`` (zero where invalid), the form every later pass reads. Two readers build it: torch
(:func:`read_torch`: transpose, validity, then shift and sums) and one compiled kernel on the CPU
(:func:`read_compiled`, numpy only, in :mod:`.compiled_reader`); both give the same buffer and statistics.
"""

from __future__ import annotations

import torch

from hyperplex.geo.methane.grouping import Grouping, block_validity, statistics_validity
from hyperplex.geo.methane.inputs import PreparedCube, require_valid
from hyperplex.geo.methane.mag1c_filter.compiled_reader import column_stats, read_compiled
from hyperplex.geo.methane.mag1c_filter.resident_cube import ResidentCube
from hyperplex.geo.methane.stats import GroupStats, estimate_shift
from hyperplex.geo.methane.stats_capture import publish_column_stats

__all__ = [
    "COLUMNS_PER_STEP",
    "ResidentCube",
    "accumulate_columns",
    "column_stats",
    "read_compiled",
    "read_pixel_major",
    "read_torch",
]

#: Detector columns per batched product in :func:`accumulate_columns`.
COLUMNS_PER_STEP = 32


def read_torch(
    prepared: PreparedCube, grouping: Grouping, device: torch.device, lead: int = 0
) -> tuple[ResidentCube, GroupStats]:
    """The resident cube, shifted, and its column statistics, by torch operations."""
    buffer, valid, stats = read_pixel_major(prepared, device, lead)
    resident = ResidentCube(buffer, lead, valid, stats)
    column = accumulate_columns(resident, prepared, grouping)
    publish_column_stats(column, resident.stats, prepared, grouping)
    return resident, column


def read_pixel_major(
    prepared: PreparedCube, device: torch.device, lead: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The whole cube as one pixel-major float32 tensor (one transposition, no per-pass re-reading).

    Args:
        prepared: The cube.
        device: Compute device.
        lead: Unused rows before the data (room for compacting the tensor in place).

    Returns:
        The (lead + W * H, C) buffer, whose row ``lead + w * H + r`` holds pixel (r, w) (zero where invalid),
        the validity (W, H) and the statistics pixels (W, H; the validity itself without a ``stats_mask``).
    """
    height, width = prepared.shape
    buffer = torch.empty(lead + width * height, prepared.n_bands, dtype=torch.float32, device=device)
    cube = buffer[lead:].view(width, height, prepared.n_bands)
    valid = torch.empty(width, height, dtype=torch.bool, device=device)
    stats = valid if prepared.stats_mask is None else torch.empty_like(valid)
    for r0, r1 in prepared.row_chunks():
        data = torch.from_numpy(prepared.read(r0, r1)).to(device)  # (C, h, W), possibly strided: no copy
        for r in range(r1 - r0):  # row by row: a 2-D transpose each, much faster than one 3-D permuted copy
            cube[:, r0 + r].copy_(data[:, r].T)
        ok = block_validity(data, prepared, r0, r1)
        valid[:, r0:r1] = ok.T
        if stats is not valid:
            stats[:, r0:r1] = statistics_validity(ok, prepared, r0, r1).T
        if not bool(ok.all()):
            cube[:, r0:r1][~ok.T] = 0.0
    return buffer, valid, stats


def accumulate_columns(resident: ResidentCube, prepared: PreparedCube, grouping: Grouping) -> GroupStats:
    """Column-mode statistics of a resident cube: whole columns per batched float64 product.

    The cube is shifted in place: afterwards it holds ``y = x - shift[group]`` (zero where invalid).

    Args:
        resident: The resident cube (zero where invalid).
        prepared: The cube's description (for the shift estimate).
        grouping: Column grouping.

    Returns:
        The statistics of the statistics pixels.

    Raises:
        NoValidDataError: If no pixel is left for the statistics.
    """
    cube, valid, in_stats = resident.cube, resident.valid, resident.stats
    device, n_bands, n_groups = cube.device, cube.shape[-1], grouping.n_groups
    shift = estimate_shift(prepared, grouping, device)
    shift32 = shift.to(torch.float32)
    count = torch.zeros(n_groups, dtype=torch.float64, device=device)
    total = torch.zeros(n_groups, n_bands, dtype=torch.float64, device=device)
    gram = torch.zeros(n_groups, n_bands, n_bands, dtype=torch.float64, device=device)
    groups = torch.from_numpy(grouping.column_groups()).to(device)
    work = torch.empty(min(COLUMNS_PER_STEP, cube.shape[0]) * cube[0].numel(), dtype=torch.float64, device=device)
    for c0 in range(0, cube.shape[0], COLUMNS_PER_STEP):
        c1 = min(c0 + COLUMNS_PER_STEP, cube.shape[0])
        gid = groups[c0:c1]
        y32 = cube[c0:c1].sub_(shift32[gid][:, None, :]).mul_(valid[c0:c1, :, None])
        y = _as_float64(y32, work)
        if resident.masked_stats:
            y.mul_(in_stats[c0:c1, :, None])
        gram.index_add_(0, gid, torch.bmm(y.transpose(1, 2), y))
        total.index_add_(0, gid, y.sum(1))
        count.index_add_(0, gid, in_stats[c0:c1].sum(1, dtype=torch.float64))
    require_valid(int(count.sum().item()))
    return GroupStats(shift, count, total, gram)


def _as_float64(block: torch.Tensor, work: torch.Tensor) -> torch.Tensor:
    """A float64 copy of ``block`` in the reused buffer ``work`` (no page faults per step)."""
    return work[: block.numel()].view(block.shape).copy_(block)
