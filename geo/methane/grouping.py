"""Statistics groups (detector columns or tiles) and chunked, pixel-major reading of a prepared cube."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from hyperplex.geo.methane.devices import resolve_device
from hyperplex.geo.methane.groups import Grouping
from hyperplex.geo.methane.inputs import PreparedCube

__all__ = [
    "Chunk",
    "Grouping",
    "chunk_groups",
    "iter_chunks",
    "iter_blocks",
    "read_block",
    "read_chunk",
    "block_validity",
    "statistics_validity",
    "resolve_device",
]


@dataclass
class Chunk:
    """Rows ``r0:r1`` as a pixel-major tensor.

    Attributes:
        r0: First row.
        r1: End row.
        data: float32 (W, h, C) on the compute device (column-major pixel order).
        valid: bool (W, h).
        stats: bool (W, h): valid pixels that enter the statistics (``valid`` less the prepared ``stats_mask``).
    """

    r0: int
    r1: int
    data: torch.Tensor
    valid: torch.Tensor
    stats: torch.Tensor


def iter_chunks(
    prepared: PreparedCube, grouping: Grouping, device: torch.device, rows_per_chunk: int | None = None
) -> Iterator[Chunk]:
    """Read the cube chunk by chunk as (W, h, C) float32 tensors with their validity."""
    for r0, r1 in grouping.split(prepared.row_chunks(rows_per_chunk)):
        yield read_chunk(prepared, r0, r1, device)


def read_chunk(prepared: PreparedCube, r0: int, r1: int, device: torch.device) -> Chunk:
    """Rows ``r0:r1`` as a (W, h, C) float32 tensor (invalid pixels zeroed) with their validity."""
    block = torch.from_numpy(prepared.read(r0, r1)).to(device)
    data = block.permute(2, 1, 0).contiguous()
    valid = torch.isfinite(data.sum(-1))  # any NaN/inf in a spectrum makes its sum non-finite
    low, high = torch.aminmax(data, dim=-1)
    valid &= (low != 0) | (high != 0)
    if prepared.fill_value is not None:
        suspect = low <= prepared.fill_value
        if bool(suspect.any()):
            valid[suspect] &= ~(data[suspect] == prepared.fill_value).any(-1)
    if prepared.mask is not None:
        valid &= ~_rows(prepared.mask, r0, r1, device).T
    if not bool(valid.all()):
        data[~valid] = 0.0
    return Chunk(r0, r1, data, valid, statistics_validity(valid.T, prepared, r0, r1).T)


def chunk_groups(grouping: Grouping, r0: int, device: torch.device) -> torch.Tensor:
    """Group id of each column of a chunk starting at row ``r0`` (a chunk lies in one row of tiles)."""
    if grouping.kind == "column":
        ids = grouping.column_groups()
    else:
        th, tw = grouping.tile_shape
        ids = (r0 // th) * -(-grouping.width // tw) + np.arange(grouping.width) // tw
    return torch.from_numpy(ids.astype(np.int64)).to(device)


def read_block(prepared: PreparedCube, r0: int, r1: int, device: torch.device) -> Chunk:
    """Rows ``r0:r1`` channel-first: a :class:`Chunk` whose data is (C, h, W) and validity (h, W)."""
    data = torch.from_numpy(np.ascontiguousarray(prepared.read(r0, r1))).to(device)
    valid = block_validity(data, prepared, r0, r1)
    if not bool(valid.all()):
        data = torch.where(valid[None], data, 0.0)
    return Chunk(r0, r1, data, valid, statistics_validity(valid, prepared, r0, r1))


def iter_blocks(prepared: PreparedCube, grouping: Grouping, device: torch.device) -> Iterator[Chunk]:
    """Channel-first chunks (see :func:`read_block`), each inside one row of tiles."""
    for r0, r1 in grouping.split(prepared.row_chunks()):
        yield read_block(prepared, r0, r1, device)


def block_validity(data: torch.Tensor, prepared: PreparedCube, r0: int, r1: int) -> torch.Tensor:
    """(h, W) validity of a (C, h, W) block: finite, not all-zero, no fill value, not masked (one min/max pass)."""
    low, high = _band_extremes(data)  # NaN propagates into both
    valid = torch.isfinite(low) & torch.isfinite(high) & ((low != 0) | (high != 0))
    if prepared.fill_value is not None:
        suspect = low <= prepared.fill_value
        if bool(suspect.any()):
            valid &= ~(suspect & (data == prepared.fill_value).any(0))
    if prepared.mask is not None:
        valid &= ~_rows(prepared.mask, r0, r1, data.device)
    return valid


def statistics_validity(valid: torch.Tensor, prepared: PreparedCube, r0: int, r1: int) -> torch.Tensor:
    """(h, W) pixels of rows ``r0:r1`` that enter the statistics: ``valid`` less the ``stats_mask``."""
    if prepared.stats_mask is None:
        return valid
    return valid & ~_rows(prepared.stats_mask, r0, r1, valid.device)


def _rows(mask: np.ndarray, r0: int, r1: int, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(mask[r0:r1])).to(device)


def _band_extremes(data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel minimum and maximum over the bands of a (C, h, W) block, NaN-propagating.

    A running elementwise minimum/maximum over the band planes: about 4x faster on CPU than ``aminmax(dim=0)``,
    which reduces along the strided axis.
    """
    low, high = data[0].clone(), data[0].clone()
    for band in data[1:]:
        torch.minimum(low, band, out=low)
        torch.maximum(high, band, out=high)
    return low, high
