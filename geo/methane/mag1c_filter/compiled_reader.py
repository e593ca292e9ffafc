"""The cube read once into a resident pixel-major tensor, validated and shifted, by a compiled kernel (CPU).

Column-wise Mag1c keeps the selected bands in memory as (W, H, C) float32 (one detector column after the
other). The torch path builds it in three passes (transpose, validity, then shift and sums); here one
kernel reads each row chunk of the (C, H, W) cube once and writes ``y = x - m[group]`` (zero where invalid),
the validity and the per-column sums and counts. Values are the same as the torch path's: float32
subtraction of the same float32 reference spectra, float64 sums.

Validity is that of :func:`.resident.read_pixel_major`: every band finite (the float64 sum of the bands is
finite), not all zero, no band equal to the fill value, not masked; the sums and counts cover the valid
pixels outside the ``stats_mask``.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from hyperplex.geo.methane.inputs import PreparedCube
from hyperplex.geo.methane.mag1c_filter.jit import kernel, numba_or_none, run_kernel

__all__ = ["ingest_columns", "ingest_kernel"]


@functools.cache
def ingest_kernel() -> Any:
    """The compiled kernel of :func:`ingest_columns` (built on first use: numba is imported then)."""
    numba = numba_or_none()

    @kernel(parallel=True)
    def ingest(src, r0, mask, stats_mask, fill, shift, groups, out, valid, stats, sums, counts):  # pragma: no cover
        n_bands, rows, width = src.shape
        use_mask = mask.shape[0] > 0
        use_stats_mask = stats_mask.shape[0] > 0
        for w in numba.prange(width):
            g = groups[w]
            spectrum = np.empty(n_bands, dtype=np.float32)
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
                        if counted:
                            sums[w, c] += y
                    if counted:
                        counts[w] += 1
                else:
                    out[w, r, :] = 0.0

    return ingest


def ingest_columns(
    prepared: PreparedCube, column_groups: np.ndarray, shift: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Read the selected bands into a shifted pixel-major buffer (needs numba).

    Args:
        prepared: The cube (CPU).
        column_groups: Group of each column (W,).
        shift: Per-group reference spectra (G, C), float64 and float32-representable.

    Returns:
        The (W * H, C) float32 buffer (row ``w * H + r`` holds ``x - shift`` of pixel (r, w), zero
        where invalid), the validity (W, H), the statistics pixels (W, H: valid and not in ``stats_mask``),
        and their per-column sums (W, C) and counts (W,), float64.
    """
    height, width = prepared.shape
    n_bands = prepared.n_bands
    buffer = torch.empty(width * height, n_bands, dtype=torch.float32)
    cube = buffer.view(width, height, n_bands).numpy()
    valid, stats = np.empty((width, height), dtype=bool), np.empty((width, height), dtype=bool)
    sums, counts = np.zeros((width, n_bands)), np.zeros(width)
    shift32 = shift.to(torch.float32).numpy()
    groups = np.ascontiguousarray(column_groups, dtype=np.int64)
    fill = np.float32(np.nan if prepared.fill_value is None else prepared.fill_value)
    kernel = ingest_kernel()
    for r0, r1 in prepared.row_chunks():
        masks = (_rows(prepared.mask, r0, r1, width), _rows(prepared.stats_mask, r0, r1, width))
        run_kernel(kernel, prepared.read(r0, r1), r0, *masks, fill, shift32, groups, cube, valid, stats, sums, counts)
    out = (torch.from_numpy(valid), torch.from_numpy(stats))
    return buffer, *out, (torch.from_numpy(sums), torch.from_numpy(counts))


def _rows(mask: np.ndarray | None, r0: int, r1: int, width: int) -> np.ndarray:
    """Rows ``r0:r1`` of a (H, W) mask for the kernel; an empty (0, W) array stands for no mask."""
    return np.zeros((0, width), dtype=bool) if mask is None else np.ascontiguousarray(mask[r0:r1], dtype=bool)
