"""The resident cube of column-wise Mag1c: the selected bands read once, pixel-major, shifted in place.

Pixel ``(r, w)`` is row ``lead + w * H + r`` of a (lead + W * H, C) float32 buffer (one detector column after
the other), so a column group's pixels are contiguous. After the statistics pass the buffer holds
``y = x - m[group]`` (zero where invalid), the form every later pass reads. Two readers build it: torch
(:func:`read_torch`: transpose, validity, then shift and sums) and one compiled kernel on the CPU
(:func:`read_compiled`, see :mod:`.compiled_reader`); both give the same buffer and statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hyperplex.geo.methane.grouping import Grouping, block_validity, statistics_validity
from hyperplex.geo.methane.inputs import PreparedCube, require_valid
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
#: Detector columns per float64 product in :func:`column_stats` (a 2-4 MiB float64 block stays in cache).
GRAM_COLUMNS = 8


@dataclass
class ResidentCube:
    """The pixel-major buffer of a cube and its per-pixel flags.

    Attributes:
        buffer: (lead + W * H, C) float32 (see the module docstring).
        lead: Unused rows before the data (room for packing candidates in place).
        valid: (W, H) bool: pixels that are filtered.
        stats: (W, H) bool: valid pixels that enter the statistics (``valid`` itself without a ``stats_mask``).
    """

    buffer: torch.Tensor
    lead: int
    valid: torch.Tensor
    stats: torch.Tensor

    @property
    def cube(self) -> torch.Tensor:
        """The (W, H, C) view of the data rows."""
        width, height = self.valid.shape
        return self.buffer[self.lead :].view(width, height, -1)

    @property
    def masked_stats(self) -> bool:
        """Whether some valid pixels stay out of the statistics."""
        return self.stats is not self.valid


def read_torch(
    prepared: PreparedCube, grouping: Grouping, device: torch.device, lead: int = 0
) -> tuple[ResidentCube, GroupStats]:
    """The resident cube, shifted, and its column statistics, by torch operations."""
    buffer, valid, stats = read_pixel_major(prepared, device, lead)
    resident = ResidentCube(buffer, lead, valid, stats)
    column = accumulate_columns(resident, prepared, grouping)
    publish_column_stats(column, resident.stats, prepared, grouping)
    return resident, column


def read_compiled(prepared: PreparedCube, grouping: Grouping) -> tuple[ResidentCube, GroupStats]:
    """The resident cube, shifted, and its column statistics, read by one compiled kernel (CPU, numba)."""
    from hyperplex.geo.methane.mag1c_filter.compiled_reader import ingest_columns

    shift = estimate_shift(prepared, grouping, torch.device("cpu"))
    buffer, valid, stats, (sums, counts) = ingest_columns(prepared, grouping.column_groups(), shift)
    resident = ResidentCube(buffer, 0, valid, valid if prepared.stats_mask is None else stats)
    column = column_stats(resident, sums, counts, shift, grouping)
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


def column_stats(
    resident: ResidentCube, sums: torch.Tensor, counts: torch.Tensor, shift: torch.Tensor, grouping: Grouping
) -> GroupStats:
    """Column-mode statistics of a resident cube that already holds ``y = x - shift`` (zero where invalid).

    Args:
        resident: The resident cube.
        sums: Per-column sums of y over the statistics pixels (W, C), float64.
        counts: Per-column statistics pixels (W,), float64.
        shift: Per-group reference spectra (G, C).
        grouping: Column grouping.

    Returns:
        The statistics (Gram matrices from whole columns per batched float64 product).

    Raises:
        NoValidDataError: If no pixel is left for the statistics.
    """
    require_valid(int(counts.sum().item()))
    cube = resident.cube
    n_groups, n_bands, device = grouping.n_groups, cube.shape[-1], cube.device
    groups = torch.from_numpy(grouping.column_groups()).to(device)
    gram = torch.zeros(n_groups, n_bands, n_bands, dtype=torch.float64, device=device)
    step = GRAM_COLUMNS
    work = torch.empty(min(step, cube.shape[0]) * cube[0].numel(), dtype=torch.float64, device=device)
    for c0 in range(0, cube.shape[0], step):
        y = _as_float64(cube[c0 : c0 + step], work)
        if resident.masked_stats:
            y.mul_(resident.stats[c0 : c0 + step, :, None])
        gram.index_add_(0, groups[c0 : c0 + step], torch.bmm(y.transpose(1, 2), y))
    zeros = torch.zeros(n_groups, dtype=torch.float64, device=device)
    total = torch.zeros(n_groups, n_bands, dtype=torch.float64, device=device).index_add_(0, groups, sums)
    return GroupStats(shift, zeros.index_add_(0, groups, counts), total, gram)


def _as_float64(block: torch.Tensor, work: torch.Tensor) -> torch.Tensor:
    """A float64 copy of ``block`` in the reused buffer ``work`` (no page faults per step)."""
    return work[: block.numel()].view(block.shape).copy_(block)
