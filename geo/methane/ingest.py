"""The cube read once into a resident pixel-major tensor, validated and shifted, by a compiled kernel (CPU).

Column-wise Mag1c keeps the selected bands in memory as (W, H, C) float32 (one detector column after the
other). The torch path builds it in three passes (transpose, validity, then shift and sums); here one
kernel reads each row chunk of the (C, H, W) cube once and writes ``y = x - m[group]`` (zero where invalid),
the validity and the per-column sums and counts. Values are the same as the torch path's: float32
subtraction of the same float32 reference spectra, float64 sums.

Validity is that of :func:`hyperplex.geo.methane.grouping.read_pixel_major`: every band finite (the float64
sum of the bands is finite), not all zero, no band equal to the fill value, not masked.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from hyperplex.geo.methane.inputs import PreparedCube
from hyperplex.geo.methane.jit import kernel, numba_or_none, run_kernel

__all__ = ["ingest_columns"]


@functools.cache
def _kernel() -> Any:
    numba = numba_or_none()

    @kernel(parallel=True)
    def ingest(src, r0, mask, fill, shift, groups, out, valid, sums, counts):  # pragma: no cover - compiled
        n_bands, rows, width = src.shape
        use_mask = mask.shape[0] > 0
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
                if ok:
                    for c in range(n_bands):
                        y = spectrum[c] - shift[g, c]
                        out[w, r, c] = y
                        sums[w, c] += y
                    counts[w] += 1
                else:
                    out[w, r, :] = 0.0

    return ingest


def ingest_columns(
    prepared: PreparedCube, column_groups: np.ndarray, shift: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Read the selected bands into a shifted pixel-major buffer (needs numba).

    Args:
        prepared: The cube (CPU).
        column_groups: Group of each column (W,).
        shift: Per-group reference spectra (G, C), float64 and float32-representable.

    Returns:
        The (W * H, C) float32 buffer (row ``w * H + r`` holds ``x - shift`` of pixel (r, w), zero
        where invalid), the validity (W, H), and per-column sums (W, C) and valid counts (W,), float64.
    """
    height, width = prepared.shape
    n_bands = prepared.n_bands
    buffer = torch.empty(width * height, n_bands, dtype=torch.float32)
    cube = buffer.view(width, height, n_bands).numpy()
    valid = np.empty((width, height), dtype=bool)
    sums, counts = np.zeros((width, n_bands)), np.zeros(width)
    shift32 = shift.to(torch.float32).numpy()
    groups = np.ascontiguousarray(column_groups, dtype=np.int64)
    fill = np.float32(np.nan if prepared.fill_value is None else prepared.fill_value)
    no_mask = np.zeros((0, width), dtype=bool)
    kernel = _kernel()
    for r0, r1 in prepared.row_chunks():
        mask = no_mask if prepared.mask is None else np.ascontiguousarray(prepared.mask[r0:r1], dtype=bool)
        run_kernel(kernel, prepared.read(r0, r1), r0, mask, fill, shift32, groups, cube, valid, sums, counts)
    return buffer, torch.from_numpy(valid), torch.from_numpy(sums), torch.from_numpy(counts)
