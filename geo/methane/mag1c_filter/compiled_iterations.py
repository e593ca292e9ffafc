"""Mag1c's iterations fused per statistics group: one compiled task runs all iterations of one column.

Column groups are independent in Mag1c: a group's mean, covariance and filter only depend on its own pixels.
So instead of one batched step over all groups per iteration (which streams every candidate spectrum and
every G^-1 from memory 30 times), each parallel task takes one group and runs all iterations on it: its
candidates are copied once into a task-local buffer (tens of kB: they stay in cache), and each iteration does
the Woodbury update of C^-1 t from the group's ``(G / N)^-1`` (see :mod:`.filter_vectors`), checks the bound
that lets pixels at 0 be skipped, then one sweep over the candidates (projection, new alpha, the next
moments; pixels that drop to 0 leave the buffer). When the bound fails, every valid pixel of the group is
listed again (read from the untouched resident cube) for that iteration. float64 throughout; results do not
depend on the thread count.

Importing this module imports numba (see :func:`hyperplex.geo.methane.mag1c_filter.jit.numba_or_none`).
"""

from __future__ import annotations

import numba
import numpy as np

from hyperplex.geo.methane.linalg import FALLBACK_SHRINKAGE as FALLBACK
from hyperplex.geo.methane.mag1c_filter.compiled_first_pass import add_term, dot
from hyperplex.geo.methane.mag1c_filter.cramer import solve3
from hyperplex.geo.methane.mag1c_filter.jit import kernel
from hyperplex.geo.methane.mag1c_filter.settings import EPSILON

__all__ = ["iterate"]

#: The smallest positive normal float64 (a constant: ``np.finfo`` inside a kernel makes loading it from the
#: cache import numba's array-math module, and with it scipy.linalg: most of a first call's overhead).
_TINY = float(np.finfo(np.float64).tiny)


@kernel()
def _gather(rows, valid, alpha, ratio, lo, hi, every, spectra, pixel, alpha_g, ratio_g):  # pragma: no cover
    """Copy the group's candidates (or, with ``every``, all its valid pixels) into the task buffers."""
    n = 0
    for i in range(lo, hi):
        if valid[i] and (every or alpha[i] > 0.0 or ratio[i] <= 0.0):
            spectra[n] = rows[i]
            pixel[n] = i
            alpha_g[n] = alpha[i]
            ratio_g[n] = ratio[i]
            n += 1
    return n


@kernel()
def _filter_vector(inverse, t_prev, v, mu, t, a2, n, cit):  # pragma: no cover - compiled
    """C^-1 t into ``cit`` by Woodbury (C = B + U M U^T, U = [t_prev, V, mu]); returns max(t.C^-1 t, 1)."""
    n_bands = t.size
    basis = (t_prev, v, mu)
    solved = np.zeros((4, n_bands))  # B^-1 [t_prev, V, mu, t]
    for i in range(n_bands):
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        for j in range(n_bands):
            b = inverse[i, j]
            s0 += b * t_prev[j]
            s1 += b * v[j]
            s2 += b * mu[j]
            s3 += b * t[j]
        solved[0, i] = s0
        solved[1, i] = s1
        solved[2, i] = s2
        solved[3, i] = s3
    inner = np.zeros((3, 4))  # U^T B^-1 [U, t]
    for k in range(3):
        for m in range(4):
            inner[k, m] = dot(basis[k], solved[m])
    coef = np.zeros((3, 3))
    coef[0, 0] = a2 / n
    coef[0, 1] = -1.0 / n
    coef[1, 0] = -1.0 / n
    coef[2, 2] = -1.0
    system = np.zeros((3, 3))
    rhs = np.zeros(3)
    for i in range(3):
        system[i, i] = 1.0
    for i in range(3):
        for j in range(3):
            rhs[i] += coef[i, j] * inner[j, 3]
            for k in range(3):
                system[i, k] += coef[i, j] * inner[j, k]
    z = solve3(system, rhs)
    norm = 0.0
    for i in range(n_bands):
        cit[i] = solved[3, i] - z[0] * solved[0, i] - z[1] * solved[1, i] - z[2] * solved[2, i]
        norm += t[i] * cit[i]
    return max(norm, 1.0)


@kernel()
def _cholesky(matrix, factor):  # pragma: no cover - compiled
    """Lower Cholesky factor of ``matrix`` into ``factor``; False if it is not positive definite."""
    n_bands = matrix.shape[0]
    factor[:] = 0.0
    for j in range(n_bands):
        pivot = matrix[j, j] - dot(factor[j, :j], factor[j, :j])
        if not pivot > 0.0:
            return False
        root = np.sqrt(pivot)
        factor[j, j] = root
        for i in range(j + 1, n_bands):
            factor[i, j] = (matrix[i, j] - dot(factor[i, :j], factor[j, :j])) / root
    return True


@kernel()
def _cholesky_solve(factor, rhs, out):  # pragma: no cover - compiled
    """Solve ``L L^T out = rhs``."""
    n_bands = rhs.size
    for i in range(n_bands):
        out[i] = (rhs[i] - dot(factor[i, :i], out[:i])) / factor[i, i]
    for i in range(n_bands - 1, -1, -1):
        total = out[i]
        for k in range(i + 1, n_bands):
            total -= factor[k, i] * out[k]
        out[i] = total / factor[i, i]


@kernel()
def _shrunk(cov, alpha, out):  # pragma: no cover - compiled
    """``(1 - alpha) C + alpha diag(C)`` (mag1c's covariance lerp) into ``out``."""
    n_bands = cov.shape[0]
    for i in range(n_bands):
        for j in range(n_bands):
            out[i, j] = cov[i, j] * (1.0 - alpha)
        out[i, i] = cov[i, i]


@kernel()
def _dense_filter_vector(gram, n, empty, t_prev, v, mu, t, a2, shrinkage, cit):  # pragma: no cover - compiled
    """C^-1 t from the dense, shrunk covariance (as :func:`hyperplex.geo.methane.linalg.solve`).

    Returns ``(max(t.C^-1 t, 1), status)``: status 0 solved, 1 solved after the singular fallback
    (shrinkage 0.1 and a small ridge), 2 unsolvable (NaN: the caller makes the group's pixels NaN).
    """
    n_bands = t.size
    cov = np.empty((n_bands, n_bands))
    for i in range(n_bands):
        for j in range(n_bands):
            cov[i, j] = (gram[i, j] / n + (a2 / n) * t_prev[i] * t_prev[j]
                         - (t_prev[i] * v[j] + v[i] * t_prev[j]) / n - mu[i] * mu[j])  # fmt: skip
    matrix = np.zeros((n_bands, n_bands))
    if empty:
        for i in range(n_bands):
            matrix[i, i] = 1.0
    else:
        _shrunk(cov, shrinkage, matrix)
    factor = np.empty((n_bands, n_bands))
    status = 0
    if not _cholesky(matrix, factor):
        status = 1
        _shrunk(cov, FALLBACK, matrix)
        trace = 0.0
        for i in range(n_bands):
            trace += matrix[i, i]
        ridge = 1e-9 * max(trace / n_bands, _TINY)
        for i in range(n_bands):
            matrix[i, i] += ridge
        if not _cholesky(matrix, factor):
            cit[:] = np.nan
            return np.nan, 2
    _cholesky_solve(factor, t, cit)
    return max(dot(t, cit), 1.0), status


@kernel()
def _sweep(
    spectra, pixel, alpha_g, ratio_g, count, every, cit, offset, norm, scaling, alpha, v, stats
):  # pragma: no cover
    """One reweighting step over the listed pixels; drops those at 0. Returns (listed, A1, A2); V into ``v``.

    Only pixels in ``stats`` (all when it is empty) add to the moments A1, A2, V.
    """
    all_stats = stats.size == 0
    v[:] = 0.0
    s1 = 0.0
    s2 = 0.0
    keep = 0
    for j in range(count):
        r = ratio_g[j]
        prev = alpha_g[j]
        if prev <= 0.0 and r > 0.0 and not every:
            alpha[pixel[j]] = 0.0
            continue
        row = spectra[j]
        new = max((dot(row, cit) - offset - 1.0 / (r * (prev + EPSILON))) / (r * norm), 0.0)
        a = scaling * r * new
        if a != 0.0 and (all_stats or stats[pixel[j]]):
            d1, d2 = add_term(v, row, a)
            s1 += d1
            s2 += d2
        if new > 0.0 or r <= 0.0:
            if keep != j:
                spectra[keep] = row
                pixel[keep] = pixel[j]
                ratio_g[keep] = r
            alpha_g[keep] = new
            keep += 1
        else:
            alpha[pixel[j]] = 0.0
    return keep, s1, s2


@kernel(parallel=True)
def iterate(rows, valid, stats, lo, hi, alpha, ratio, inverse, dense, gram, shrinkage, total, count, shift, template,
            t0, a1_0, a2_0, v0, scaled, ratio_max, num_iter, scaling, mean_out, cit_out, norm_out, relisted,
            status):  # fmt: skip
    """All Mag1c iterations, one parallel task per group; updates the per-pixel ``alpha`` (column-major).

    Args:
        rows: (W * H, C) float32 shifted spectra (read only).
        valid: (W * H,) bool.
        stats: (W * H,) bool: pixels in the statistics; empty = every valid pixel.
        lo: (G,) first pixel of each group.
        hi: (G,) end of each group's pixels.
        alpha: Per-pixel first-pass alpha, float64 (updated in place).
        ratio: Per-pixel albedo factor R, float64.
        inverse: (G, C, C) ``(G / N)^-1`` (Woodbury updates).
        dense: (G,) bool: groups solved densely every iteration instead (shrinkage, or G / N singular).
        gram: (G, C, C) Gram matrices of y (dense groups).
        shrinkage: (G,) covariance shrinkage (dense groups).
        total: (G, C) sums of y.
        count: (G,) valid pixels.
        shift: (G, C) reference spectra m.
        template: (C,) unit absorption x 1e5.
        t0: (G, C) first target.
        a1_0: (G,) first-pass A1.
        a2_0: (G,) first-pass A2.
        v0: (G, C) first-pass V.
        scaled: (G,) max R |y - m| over pixels with R > 0 (bound).
        ratio_max: (G,) max R over pixels with R > 0 (bound).
        num_iter: Iterations.
        scaling: Covariance update scaling.
        mean_out: (G, C) output: the last iteration's mean.
        cit_out: (G, C) output: its C^-1 t.
        norm_out: (G,) output: its normaliser.
        relisted: (G,) output: iterations that listed every pixel of the group again.
        status: (G,) output: worst status (1 singular fallback, 2 unsolvable, see :func:`_dense_filter_vector`;
            3 non-finite filter: the group's pixels are NaN).
    """  # pragma: no cover - compiled
    n_bands = rows.shape[1]
    for g in numba.prange(lo.size):
        size = max(hi[g] - lo[g], 1)
        spectra = np.empty((size, n_bands), dtype=np.float32)
        pixel = np.empty(size, dtype=np.int64)
        alpha_g = np.empty(size)
        ratio_g = np.empty(size)
        listed = _gather(rows, valid, alpha, ratio, lo[g], hi[g], False, spectra, pixel, alpha_g, ratio_g)
        n = max(count[g], 1.0)
        t_prev = t0[g].copy()
        v = v0[g].copy()
        a1 = a1_0[g]
        a2 = a2_0[g]
        mu = np.zeros(n_bands)
        t = np.zeros(n_bands)
        cit = np.zeros(n_bands)
        norm = 1.0
        for _ in range(num_iter):
            for c in range(n_bands):
                mu[c] = (total[g, c] - a1 * t_prev[c]) / n
                t[c] = template[c] * (shift[g, c] + mu[c])
            if dense[g]:
                norm, code = _dense_filter_vector(gram[g], n, count[g] == 0, t_prev, v, mu, t, a2, shrinkage[g], cit)
                status[g] = max(status[g], code)
            else:
                norm = _filter_vector(inverse[g], t_prev, v, mu, t, a2, n, cit)
            bound = (scaled[g] + np.sqrt(dot(mu, mu)) * ratio_max[g]) * np.sqrt(dot(cit, cit)) * EPSILON
            if not (np.isfinite(bound) and np.isfinite(norm)):  # no filter (unsolvable, or degenerate pixels such
                status[g] = max(status[g], 3)  # as R = 0): every valid pixel of the group comes out NaN
                for i in range(lo[g], hi[g]):
                    if valid[i]:
                        alpha[i] = np.nan
                listed = 0
                break
            every = bound >= 1.0 - 1e-6
            if every:  # pixels at 0 are not certified to stay there: list them all
                relisted[g] += 1
                for j in range(listed):
                    alpha[pixel[j]] = alpha_g[j]
                listed = _gather(rows, valid, alpha, ratio, lo[g], hi[g], True, spectra, pixel, alpha_g, ratio_g)
            listed, a1, a2 = _sweep(
                spectra, pixel, alpha_g, ratio_g, listed, every, cit, dot(mu, cit), norm,
                scaling, alpha, v, stats,
            )  # fmt: skip
            t_prev[:] = t
        for j in range(listed):
            alpha[pixel[j]] = alpha_g[j]
        for c in range(n_bands):
            mean_out[g, c] = shift[g, c] + mu[c]
            cit_out[g, c] = cit[c]
        norm_out[g] = norm
