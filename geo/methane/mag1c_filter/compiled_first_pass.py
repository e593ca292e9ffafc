"""Compiled (numba) sweep of Mag1c's first pass over every pixel, one parallel task per column group.

Also the float64 products the compiled iterations share (:mod:`.compiled_iterations`). See
:mod:`.compiled_engine` for the data
layout. Importing this module imports numba.
"""

from __future__ import annotations

import numba
import numpy as np

from hyperplex.geo.methane.mag1c_filter.jit import kernel

__all__ = ["add_term", "dot", "first"]


@kernel()
def dot(row, vector):  # pragma: no cover - compiled
    """float64 dot product of two vectors (a float32 spectrum or a float64 vector, with a float64 vector)."""
    total = 0.0
    for c in range(row.size):
        total += row[c] * vector[c]
    return total


@kernel()
def add_term(acc, row, a):  # pragma: no cover - compiled
    """``acc += a * row`` (one pixel's term of V = sum a_i y_i); returns ``(a, a^2)`` for A1 and A2."""
    for c in range(row.size):
        acc[c] += a * row[c]
    return a, a * a


@kernel(parallel=True)
def first(rows, valid, stats, lo, hi, cit, unit, offsets, norm, albedo, scaling, alpha, ratio, a1, a2, v,
          scaled_max, ratio_max):  # fmt: skip
    """Mag1c's first estimate of every pixel (clipped at 0): alpha, R, the moments and the bound terms.

    Args:
        rows: (W * H, C) float32 shifted spectra y = x - m.
        valid: (W * H,) bool.
        stats: (W * H,) bool: pixels in the statistics (only they add to the moments); empty = every valid one.
        lo: (G,) first pixel of each group.
        hi: (G,) end of each group's pixels.
        cit: (G, C) C^-1 t.
        unit: (G, C) mean / |mean|^2.
        offsets: (G, 2) ``mu_y . C^-1 t`` and ``mu_y . unit``.
        norm: (G,) t.C^-1 t.
        albedo: Compute R (else R = 1).
        scaling: Covariance update scaling.
        alpha: (W * H,) output alpha.
        ratio: (W * H,) output R.
        a1: (G,) output sum of a = scaling R alpha.
        a2: (G,) output sum of a^2.
        v: (G, C) output sum of a y.
        scaled_max: (G,) output max R |y - m| over valid pixels with R > 0 (with a margin for float32 rounding).
        ratio_max: (G,) output max R over those pixels.
    """
    n_bands = rows.shape[1]  # pragma: no cover - compiled
    every = stats.size == 0
    for g in numba.prange(lo.size):
        acc = np.zeros(n_bands)
        s1 = 0.0
        s2 = 0.0
        bound_y = 0.0
        bound_r = 0.0
        for i in range(lo[g], hi[g]):
            if not valid[i]:
                alpha[i] = 0.0
                ratio[i] = 1.0
                continue
            row = rows[i]
            proj = 0.0
            bright = 0.0
            square = 0.0
            for c in range(n_bands):
                x = np.float64(row[c])
                proj += x * cit[g, c]
                bright += x * unit[g, c]
                square += x * x
            r = 1.0 + bright - offsets[g, 1] if albedo else 1.0
            new = max((proj - offsets[g, 0]) / (r * norm[g]), 0.0)
            alpha[i] = new
            ratio[i] = r
            if r > 0.0:
                bound_y = max(bound_y, r * np.sqrt(square) * (1.0 + 1e-4))
                bound_r = max(bound_r, r)
            a = scaling * r * new
            if a != 0.0 and (every or stats[i]):
                d1, d2 = add_term(acc, row, a)
                s1 += d1
                s2 += d2
        a1[g] = s1
        a2[g] = s2
        v[g] = acc
        scaled_max[g] = bound_y
        ratio_max[g] = bound_r
