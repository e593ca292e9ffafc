"""Compiled (numba) sweeps of Mag1c over the pixels of each column group, one parallel task per group.

See :mod:`.candidates` for the data layout. Importing this module imports numba.
"""

from __future__ import annotations

import numba
import numpy as np

from hyperplex.geo.methane.jit import FASTMATH

__all__ = ["add_term", "dot", "first", "pack", "step", "unpack"]

EPSILON = 1e-9  # as mag1c
#: A group is compacted during an iteration when fewer than this fraction of its listed rows are alive.
REFILL = 0.75


@numba.njit(cache=True, fastmath=FASTMATH)
def dot(row, vector):  # pragma: no cover - compiled
    """float64 dot product of a float32 spectrum with a float64 vector."""
    total = 0.0
    for c in range(row.size):
        total += row[c] * vector[c]
    return total


@numba.njit(cache=True, fastmath=FASTMATH)
def add_term(acc, row, a):  # pragma: no cover - compiled
    """``acc += a * row`` (one pixel's term of V = sum a_i y_i); returns ``(a, a^2)`` for A1 and A2."""
    for c in range(row.size):
        acc[c] += a * row[c]
    return a, a * a


@numba.njit(parallel=True, cache=True)
def pack(rows, pixel, alpha_p, ratio_p, alpha, ratio, valid, lo, hi, count):  # pragma: no cover - compiled
    """Move each group's candidates (valid, alpha > 0 or R <= 0) to the front of its rows, order kept."""
    for g in numba.prange(lo.size):
        keep = lo[g]
        for i in range(lo[g], hi[g]):
            if valid[i] and (alpha[i] > 0.0 or ratio[i] <= 0.0):
                if keep != i:
                    rows[keep] = rows[i]
                pixel[keep] = i
                alpha_p[keep] = alpha[i]
                ratio_p[keep] = ratio[i]
                keep += 1
        count[g] = keep - lo[g]


@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def first(rows, valid, lo, hi, cit, unit, offsets, norm, albedo, nonneg, scaling, pack_now,
          alpha, ratio, pixel, alpha_p, ratio_p, count, a1, a2, v, scaled_max, ratio_max):  # fmt: skip
    """First estimate of every pixel: alpha, R, the moments, the bound terms; packs the candidates if asked."""
    n_bands = rows.shape[1]  # pragma: no cover - compiled
    for g in numba.prange(lo.size):
        acc = np.zeros(n_bands)
        s1 = 0.0
        s2 = 0.0
        bound_y = 0.0
        bound_r = 0.0
        keep = lo[g]
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
            new = (proj - offsets[g, 0]) / (r * norm[g])
            if nonneg:
                new = max(new, 0.0)
            alpha[i] = new
            ratio[i] = r
            if r > 0.0:  # bound terms: max R |y - m| (with a margin for float32 rounding) and max R
                bound_y = max(bound_y, r * np.sqrt(square) * (1.0 + 1e-4))
                bound_r = max(bound_r, r)
            a = scaling * r * new
            if a != 0.0:
                d1, d2 = add_term(acc, row, a)
                s1 += d1
                s2 += d2
            if pack_now and (new > 0.0 or r <= 0.0):
                if keep != i:
                    rows[keep] = row
                pixel[keep] = i
                alpha_p[keep] = new
                ratio_p[keep] = r
                keep += 1
        count[g] = keep - lo[g]
        a1[g] = s1
        a2[g] = s2
        v[g] = acc
        scaled_max[g] = bound_y
        ratio_max[g] = bound_r


@numba.njit(parallel=True, cache=True, fastmath=FASTMATH)
def step(rows, pixel, alpha_p, ratio_p, lo, count, alive, full, cit, offset, norm, scaling, a1, a2, v):
    """One reweighting step over each group's listed candidates; compacts groups below :data:`REFILL` alive."""
    n_bands = rows.shape[1]  # pragma: no cover - compiled
    for g in numba.prange(lo.size):
        acc = np.zeros(n_bands)
        s1 = 0.0
        s2 = 0.0
        compact = alive[g] < REFILL * count[g]
        keep = lo[g]
        for j in range(lo[g], lo[g] + count[g]):
            r = ratio_p[j]
            prev = alpha_p[j]
            if prev <= 0.0 and r > 0.0 and not full[g]:
                if not compact:
                    keep += 1  # stays listed (dead) until the group is compacted
                continue
            row = rows[j]
            proj = dot(row, cit[g])
            new = max((proj - offset[g] - 1.0 / (r * (prev + EPSILON))) / (r * norm[g]), 0.0)
            a = scaling * r * new
            if a != 0.0:
                d1, d2 = add_term(acc, row, a)
                s1 += d1
                s2 += d2
            if compact and keep != j and (new > 0.0 or r <= 0.0):
                rows[keep] = row
                pixel[keep] = pixel[j]
                ratio_p[keep] = r
            if new > 0.0 or r <= 0.0 or not compact:
                alpha_p[keep] = new
                keep += 1
        listed = keep - lo[g]
        alive[g] = 0
        for j in range(lo[g], keep):
            alive[g] += alpha_p[j] > 0.0 or ratio_p[j] <= 0.0
        count[g] = listed
        a1[g] = s1
        a2[g] = s2
        v[g] = acc


@numba.njit(parallel=True, cache=True)
def unpack(pixel, alpha_p, lo, count, alpha):  # pragma: no cover - compiled
    """Scatter the listed candidates' alpha into a per-pixel array."""
    for g in numba.prange(lo.size):
        for j in range(lo[g], lo[g] + count[g]):
            alpha[pixel[j]] = alpha_p[j]
