"""Column-wise Mag1c on the CPU with compiled kernels: the engine, the data layout and the calls into them.

The resident cube is pixel-major, one detector column after the other: pixel ``i = w * H + r`` is row ``i``
(see :mod:`.resident`). Group ``g`` (``group_columns`` adjacent columns) owns pixels ``lo[g]:hi[g]``, so every
kernel runs one parallel task per group and results do not depend on the thread count:

* :func:`.compiled_reader.ingest_columns`: the resident cube, shifted, with its validity and column sums;
* :func:`.compiled_first_pass.first`: the first estimate of every pixel, the moments of the first
  covariance update and the per-group bound terms;
* :func:`.compiled_iterations.iterate`: all reweighting iterations of a group in one task, on its candidate
  pixels (those with alpha > 0), in cache.

The first pass and the iterations are called on batches of groups (:func:`group_batches`, about eight per
pass: each call still has many groups per thread) so that a progress bar ("mag1c", in groups) advances
between calls; results are the same as one call over all groups, since every task touches only its own
group's entries and pixels.

Needs numba (a core dependency); :func:`available` says whether it imports. Everything here is numpy (the
statistics too, :mod:`hyperplex.geo.methane.backend`): a run imports no torch.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from hyperplex.common.progress import progress
from hyperplex.geo.methane.group_stats import GroupStats
from hyperplex.geo.methane.linalg import warn_singular
from hyperplex.geo.methane.mag1c_filter.compiled_reader import read_compiled
from hyperplex.geo.methane.mag1c_filter.engine import Mag1cResult, output_images
from hyperplex.geo.methane.mag1c_filter.filter_vectors import FilterVectors
from hyperplex.geo.methane.mag1c_filter.jit import numba_or_none, run_kernel
from hyperplex.geo.methane.mag1c_filter.resident_cube import ResidentCube
from hyperplex.geo.methane.mag1c_filter.settings import Mag1cSettings
from hyperplex.geo.methane.run_setup import Setup

__all__ = ["ColumnCandidates", "CompiledEngine", "available", "group_batches", "kernels"]

#: Passes over the groups are split into about this many kernel calls (progress steps) ...
CALLS_PER_PASS = 8
#: ... of at least this many groups each (enough parallel tasks for every thread).
MIN_GROUPS_PER_CALL = 64


def group_batches(n_groups: int) -> list[slice]:
    """Consecutive group ranges, one kernel call each (see the module docstring)."""
    size = max(MIN_GROUPS_PER_CALL, -(-n_groups // CALLS_PER_PASS))
    return [slice(g0, min(g0 + size, n_groups)) for g0 in range(0, n_groups, size)]


def available() -> bool:
    """True when numba is installed (the compiled CPU engine can run)."""
    return numba_or_none() is not None


def kernels() -> list:
    """The engine's top-level kernels (importing them imports numba), e.g. for :func:`.jit.preload`."""
    from hyperplex.geo.methane.mag1c_filter.compiled_first_pass import first
    from hyperplex.geo.methane.mag1c_filter.compiled_iterations import iterate
    from hyperplex.geo.methane.mag1c_filter.compiled_reader import ingest_kernel

    return [ingest_kernel(), first, iterate]


class CompiledEngine:
    """Mag1c by compiled kernels: column groups on the CPU, reweighted and clipped at 0 (see :meth:`supports`)."""

    @staticmethod
    def supports(run: Setup, settings: Mag1cSettings) -> bool:
        """Whether this engine can run: column groups on the CPU, reweighted, clipped at 0, numba installed.

        (The bound that skips pixels at 0 needs the reweighting and the clip.)
        """
        eligible = run.grouping.kind == "column" and settings.sparsity and settings.nonnegative
        return eligible and run.on_cpu and available()

    def run(self, run: Setup, settings: Mag1cSettings) -> Mag1cResult:
        """Read the cube into the resident buffer, then the first pass and all iterations by kernels."""
        resident, stats = read_compiled(run.prepared, run.grouping)
        template = np.asarray(run.prepared.template, dtype=np.float64)
        vectors = FilterVectors(stats, template, settings.shrinkage, settings.what)
        mu_y, t, cov = vectors.initial()
        cit, norm = vectors.dense(t, cov, clamp=False)
        final = (stats.shift + mu_y, cit, norm)
        candidates = ColumnCandidates(resident, run.grouping.column_groups(), settings.update_scaling)
        mean = stats.shift + mu_y
        passes = 2 if settings.num_iter else 1
        with progress(total=passes * run.grouping.n_groups, desc="mag1c", unit="group") as bar:
            candidates.advance = bar.update
            unit = mean / (mean * mean).sum(-1)[:, None]
            moments = candidates.first_pass(mu_y, cit, norm, unit, settings.albedo)
            if settings.num_iter:
                inverses = (*vectors.second_moment_inverses(), vectors.shrinkage)
                final, _ = candidates.iterate(stats, inverses, template, (t, moments), settings)
        alpha, ratio = candidates.images()
        return Mag1cResult(*output_images(alpha, ratio, resident.valid.T), final)


class ColumnCandidates:
    """Per-pixel state of a compiled column-wise Mag1c run over a resident pixel-major cube.

    Args:
        resident: The resident cube (shifted: y = x - m, zero where invalid; read only).
        column_groups: Group of each column (W,), non-decreasing.
        scaling: Fraction of the signal removed before re-estimating statistics.
    """

    def __init__(self, resident: ResidentCube, column_groups: np.ndarray, scaling: float) -> None:
        width, height = resident.valid.shape
        self.shape = (height, width)
        self.rows = resident.cube.reshape(-1, resident.cube.shape[-1])
        self.valid = resident.valid.reshape(-1)
        #: Pixels in the statistics, or an empty array where they are all the valid ones.
        self.stats = resident.stats.reshape(-1) if resident.masked_stats else np.zeros(0, dtype=bool)
        n_groups = int(column_groups.max()) + 1 if column_groups.size else 0
        first = np.searchsorted(column_groups, np.arange(n_groups + 1))
        self.lo, self.hi = first[:-1] * height, first[1:] * height
        self.scaling = float(scaling)
        size = width * height
        #: Per-pixel alpha and R, column-major, float64.
        self.alpha, self.ratio = np.zeros(size), np.ones(size)
        #: Per group: max R |y - m| and max R over valid pixels with R > 0 (the bound of the iterations).
        self.bounds: tuple[np.ndarray, np.ndarray] | None = None
        #: Called with the number of groups each kernel call has finished (a progress bar's ``update``).
        self.advance: Callable[[int], object] = lambda n: None

    def first_pass(
        self, mu_y: np.ndarray, cit: np.ndarray, norm: np.ndarray, unit: np.ndarray, albedo: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mag1c's first estimate for every pixel (clipped at 0); sets alpha, R and :attr:`bounds`.

        Args:
            mu_y: Mean offset (G, C) of the shifted data, float64.
            cit: C^-1 t (G, C), float64.
            norm: t.C^-1 t (G,), float64.
            unit: mean / |mean|^2 (G, C), float64 (R = x.mean / |mean|^2).
            albedo: Compute the albedo factor R (else 1).

        Returns:
            The moments ``(A1, A2, V)`` per group.
        """
        from hyperplex.geo.methane.mag1c_filter.compiled_first_pass import first

        n_groups, n_bands = cit.shape
        offsets = np.stack([(mu_y * cit).sum(-1), (mu_y * unit).sum(-1)], axis=1)
        a1, a2, v = np.zeros(n_groups), np.zeros(n_groups), np.zeros((n_groups, n_bands))
        scaled_max, ratio_max = np.zeros(n_groups), np.zeros(n_groups)
        per_group = (self.lo, self.hi, _f64(cit), _f64(unit), offsets, _f64(norm))
        outputs = (a1, a2, v, scaled_max, ratio_max)
        for b in group_batches(n_groups):
            lo, hi, cit_b, unit_b, offsets_b, norm_b = (x[b] for x in per_group)
            run_kernel(first, self.rows, self.valid, self.stats, lo, hi, cit_b, unit_b, offsets_b, norm_b,
                       bool(albedo), self.scaling, self.alpha, self.ratio, *(x[b] for x in outputs))  # fmt: skip
            self.advance(b.stop - b.start)
        self.bounds = (scaled_max, ratio_max)
        return a1, a2, v

    def iterate(self, stats: GroupStats, solver: tuple, template: np.ndarray, start: tuple,
                settings: Mag1cSettings) -> tuple[tuple[np.ndarray, ...], int]:  # fmt: skip
        """All reweighting iterations, fused per group (:func:`.compiled_iterations.iterate`).

        Runs after :meth:`first_pass`.

        Args:
            stats: The group statistics (``gram``, ``sum``, ``count``, ``shift``).
            solver: ``(inverse, dense, shrinkage)``: per group ``(G / N)^-1`` (G, C, C) for Woodbury updates,
                a (G,) bool marking groups solved densely every iteration instead, and their shrinkage.
            template: Unit absorption x 1e5 (C,).
            start: The first target t (G, C) and the first-pass moments ``(A1, A2, V)``.
            settings: Iterations and method name (for warnings).

        Returns:
            The last iteration's ``(mean, C^-1 t, normaliser)`` and how many group iterations listed every pixel
            again; the per-pixel alpha is updated (see :meth:`images`).
        """
        from hyperplex.geo.methane.mag1c_filter.compiled_iterations import iterate

        t0, (a1, a2, v) = start
        n_groups, n_bands = t0.shape
        mean, cit, norm = np.empty((n_groups, n_bands)), np.empty((n_groups, n_bands)), np.empty(n_groups)
        relisted, status = np.zeros(n_groups, dtype=np.int64), np.zeros(n_groups, dtype=np.int64)
        inverse, dense, shrinkage = solver
        arrays = (inverse, dense, stats.gram, shrinkage, stats.sum, stats.count, stats.shift)
        inputs = (*(np.ascontiguousarray(x) for x in arrays), *(_f64(x) for x in (t0, a1, a2, v, *self.bounds)))
        outputs = (mean, cit, norm, relisted, status)
        for b in group_batches(n_groups):
            group_in = [x[b] for x in inputs]
            run_kernel(iterate, self.rows, self.valid, self.stats, self.lo[b], self.hi[b], self.alpha, self.ratio,
                       *group_in[:7], _f64(template), *group_in[7:], int(settings.num_iter), self.scaling,
                       *(x[b] for x in outputs))  # fmt: skip
            self.advance(b.stop - b.start)
        _warn_status(settings.what, status)
        return (mean, cit, norm), int(relisted.sum())

    def images(self) -> tuple[np.ndarray, np.ndarray]:
        """The per-pixel alpha and R in image order (H * W), float64."""
        height, width = self.shape
        return _image_order(self.alpha, height, width), _image_order(self.ratio, height, width)


def _warn_status(what: str, status: np.ndarray) -> None:
    """Warn about groups that needed the singular fallback (1), could not be solved (2) or went non-finite (3)."""
    singular = (status == 1) | (status == 2)
    if singular.any():
        warn_singular(what, int(singular.sum()), int((status == 2).sum()), stacklevel=6)
    if (status == 3).any():
        warnings.warn(
            f"{what}: {int((status == 3).sum())} statistics group(s) gave a non-finite filter during the "
            "iterations (degenerate pixels, e.g. a zero albedo factor); their pixels are NaN.",
            RuntimeWarning,
            stacklevel=6,
        )


def _f64(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float64)


def _image_order(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """A column-major (W * H) array in image order (H * W)."""
    return np.ascontiguousarray(values.reshape(width, height).T).reshape(-1)
