"""Mag1c: albedo-corrected, reweighted-L1 matched filter (Foote et al. 2020), faithful to mag1c 1.2.0's ``acrwl1mf``.

Per statistics group (default: one detector column) with valid pixels x_i, N of them::

    mu = mean(x); R_i = x_i.mu / mu.mu; t = k * mu; C = cov_N(x); alpha_i = relu((x_i - mu).C^-1 t / (R_i t.C^-1 t))
    repeat num_iter times:
        w_i = 1 / (R_i (alpha_i + 1e-9));  x'_i = x_i - s R_i alpha_i t
        mu = mean(x'); t = k * mu; C = cov_N(x'); n = max(t.C^-1 t, 1)
        alpha_i = relu(((x_i - mu).C^-1 t - w_i) / (R_i n))
    return 1e5 * alpha (ppm*m), R

Nothing of size N x B^2 is recomputed per iteration: with a_i = s R_i alpha_i, y_i = x_i - m (m a fixed
reference near the mean), S = sum y_i and G = sum y_i y_i^T from one streamed pass,

    mean(x') = m + (S - A1 t) / N,   sum (y_i - a_i t)(y_i - a_i t)^T = G - t V^T - V t^T + A2 t t^T,

where A1 = sum a_i, A2 = sum a_i^2 and V = sum a_i y_i only involve pixels with alpha_i > 0. So the
covariance is G / N plus a rank-3 term in [t, V, mean offset], and C^-1 t follows by Woodbury from (G / N)^-1,
inverted once per group (groups with shrinkage, or a singular G / N, factorize the dense covariance every
iteration instead). A pixel whose alpha is 0 gets the weight w_i = 1 / (R_i 1e-9); it stays 0 as long as
(x_i - mu).C^-1 t <= w_i, which is certified per group from the bound (|x_i - m| + |mean offset|) |C^-1 t|.
So after the first dense pass only the candidate pixels (alpha > 0) are touched, and the result is the same as
the full update (tests compare with mag1c 1.2.0 to 1e-3 relative).

Two implementations: on the CPU, column-wise runs use compiled kernels (:mod:`.candidates`: reader, first
pass, then all iterations of one column per parallel task, in cache); otherwise (GPU, tiles,
``engine="torch"``) torch operations batched over all groups per iteration, with the candidates packed in
segments of one group (:mod:`.packed`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hyperplex.common.errors import InvalidParameterError
from hyperplex.geo.methane.candidates import ColumnCandidates, available
from hyperplex.geo.methane.grouping import chunk_groups, iter_chunks, read_pixel_major
from hyperplex.geo.methane.ingest import ingest_columns
from hyperplex.geo.methane.inputs import FILL_VALUE
from hyperplex.geo.methane.linalg import group_shrinkage, solve
from hyperplex.geo.methane.packed import EPSILON, SEGMENT, PackedCandidates, _Packed
from hyperplex.geo.methane.runner import Setup, setup, wrap
from hyperplex.geo.methane.stats import (
    COLUMNS_PER_STEP,
    GroupStats,
    accumulate,
    accumulate_columns,
    column_stats,
    estimate_shift,
    group_add,
)
from hyperplex.geo.methane.target import TARGET_SCALING

__all__ = ["mag1c"]


def mag1c(
    cube: Any,
    wavelengths: Any = None,
    fwhm: Any = None,
    *,
    channel_axis: int = 0,
    mask: Any = None,
    window: tuple[float, float] | None = (2122.0, 2488.0),
    bands: Sequence[int] | None = None,
    num_iter: int = 30,
    albedo: bool = True,
    nonnegative: bool = True,
    sparsity: bool = True,
    covariance_update_scaling: float = 1.0,
    shrinkage: float = 0.0,
    group: str = "column",
    group_columns: int = 1,
    tile_size: int | None = None,
    fill_value: float | None = FILL_VALUE,
    device: str | torch.device | None = None,
    return_albedo: bool = False,
    engine: str = "auto",
) -> Any:
    """Mag1c CH4 enhancement (ppm*m), column-wise by default.

    Args:
        cube: Radiance, 3-D (numpy, memmap, dask, zarr or an xarray DataArray with a band dimension). Lazy
            arrays are read into memory once (the selected bands only).
        wavelengths: Band centres, nm (from the DataArray's coordinates when None).
        fwhm: Band FWHM, nm.
        channel_axis: Axis of ``cube`` holding bands.
        mask: (H, W) bool, True = excluded from statistics and output (NaN).
        window: Wavelength range of the bands used (nm); mag1c's default 2122-2488.
        bands: Explicit band indices (overrides ``window``).
        num_iter: Reweighted-L1 iterations (mag1c ``--iter``).
        albedo: Apply the albedo factor R (mag1c ``--noalbedo`` = False).
        nonnegative: Clip the initial estimate at 0 (mag1c ``--nonnegativeoff`` = False); iterations always clip.
        sparsity: Use the reweighted-L1 weights (mag1c ``--no-sparsity`` = False).
        covariance_update_scaling: Fraction of the detected signal removed before re-estimating statistics.
        shrinkage: Covariance shrinkage towards its diagonal (mag1c ``--covariance-lerp-alpha``).
        group: 'column' (mag1c; ``group_columns`` adjacent columns per group) or 'tile'.
        group_columns: Adjacent columns per group (mag1c ``--group``).
        tile_size: Tile edge (tile mode); None = whole cube.
        fill_value: Value marking missing data.
        device: Torch device; None = CUDA when available, else CPU.
        return_albedo: Also return the albedo factor R.
        engine: 'auto': column-wise runs on the CPU iterate with compiled kernels (numba,
            :mod:`.candidates`); 'torch': torch operations only (what runs on a GPU).

    Returns:
        (H, W) float32 enhancement in ppm*m (NaN where invalid), or ``(enhancement, albedo)``; DataArrays
        for xarray input.

    Raises:
        ChannelMismatchError: If the band count differs from ``wavelengths``.
        InvalidParameterError: For bad parameters or too few bands in the window.
        NoValidDataError: If no pixel is valid.
    """
    if int(num_iter) < 0 or not 0.0 <= float(shrinkage) <= 1.0:
        raise InvalidParameterError("`num_iter` must be >= 0 and `shrinkage` in [0, 1].")
    if engine not in ENGINES:
        raise InvalidParameterError(f"`engine` must be one of {ENGINES}, got {engine!r}.")
    opts = {k: v for k, v in locals().items() if k in _SETUP_KEYS}
    run = setup(cube, wavelengths, fwhm, opts)
    flags = _Flags(albedo, nonnegative, sparsity, float(covariance_update_scaling))
    compiled = engine == "auto" and compiled_path(run, flags)
    if not compiled:  # the compiled reader reads lazy inputs chunk by chunk into its own buffer
        run.prepared = run.prepared.in_memory()  # lazy inputs: read the selected bands once
    solver = Mag1cSolver(run, flags, float(shrinkage), compiled=compiled)
    enhancement, factor = solver.execute(int(num_iter))
    out = wrap(run, enhancement, "ch4_enhancement", "ppm m")
    return (out, wrap(run, factor, "albedo_factor", "1")) if return_albedo else out


#: Values of ``mag1c(engine=...)``.
ENGINES = ("auto", "torch")
_SETUP_KEYS = ("channel_axis", "mask", "window", "bands", "fill_value", "group", "group_columns", "tile_size", "device")


def compiled_path(run: Setup, flags: _Flags) -> bool:
    """Whether the compiled CPU kernels can run this: column groups on the CPU, reweighted, clipped at 0."""
    eligible = run.grouping.kind == "column" and run.device.type == "cpu" and flags.sparsity and flags.nonnegative
    return eligible and available()


@dataclass(frozen=True)
class _Flags:
    albedo: bool
    nonnegative: bool
    sparsity: bool
    update_scaling: float


class Mag1cSolver(PackedCandidates):
    """State of one Mag1c run: group statistics, per-pixel R and alpha, and the packed candidate pixels."""

    def __init__(self, run: Setup, flags: _Flags, shrinkage: float, what: str = "mag1c", compiled: bool = True) -> None:
        self.run, self.flags, self.what = run, flags, what
        self.height, self.width = run.prepared.shape
        self.valid = np.zeros(run.prepared.shape, dtype=bool)
        #: Column mode: the cube read once, pixel-major, holding y = x - m after the statistics pass (buffer,
        #: its (W, H, C) view, validity (W, H)); compacted in place into the packed set.
        self.resident: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        #: Compiled CPU path: column groups, reweighted and clipped at 0 (what the pixel-skipping bound needs).
        self.compiled = compiled and compiled_path(run, flags)
        if run.grouping.kind == "column":
            buffer, cube, valid, self.stats = self._read_columns()
            self.resident = (buffer, cube, valid)
            self.valid[:] = valid.T.cpu().numpy()
        else:
            self.stats = accumulate(run.prepared, run.grouping, run.device, valid_out=self.valid)
        self.valid_t = torch.from_numpy(self.valid.ravel()).to(run.device)
        self.shrinkage = group_shrinkage(self.stats.count, run.prepared.n_bands, shrinkage, what)
        if not self.compiled:  # per-pixel state of the torch passes (the compiled path keeps its own)
            size, dev = self.height * self.width, run.device
            self.ratio = torch.ones(size, dtype=torch.float64, device=dev)
            self.alpha = torch.zeros(size, dtype=torch.float64, device=dev)
            self.norm = torch.zeros(size, dtype=torch.float64, device=dev)
        self.pack: _Packed | None = None
        self.work: tuple[torch.Tensor, ...] | None = None
        self.rows: tuple[torch.Tensor, ...] | None = None
        self.stage: torch.Tensor | None = None
        #: Mean (G, C), C^-1 t (G, C) and normaliser (G,) of the last iteration's statistics.
        self.final: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        #: ``((G / N)^-1, dense groups)`` for Woodbury updates in the torch path, or None.
        self.second_moment_inverse: tuple[torch.Tensor, torch.Tensor] | None = None
        self.bound_terms: tuple[torch.Tensor, torch.Tensor] | None = None

    def _read_columns(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, GroupStats]:
        """The resident pixel-major buffer, its (W, H, C) view (shifted), its validity and the column statistics."""
        run = self.run
        if self.compiled:
            shift = estimate_shift(run.prepared, run.grouping, run.device)
            buffer, valid, sums, counts = ingest_columns(run.prepared, run.grouping.column_groups(), shift)
            cube = buffer.view(self.width, self.height, -1)
            return buffer, cube, valid, column_stats(cube, sums, counts, shift, run.grouping)
        lead = SEGMENT * run.grouping.n_groups  # room for packing the candidates in place
        buffer, valid = read_pixel_major(run.prepared, run.device, lead)
        cube = buffer[lead:].view(self.width, self.height, -1)
        return buffer, cube, valid, accumulate_columns(cube, valid, run.prepared, run.grouping)

    @functools.cached_property
    def groups(self) -> torch.Tensor:
        """Group of every pixel, image order (H * W), int64."""
        return torch.from_numpy(self.run.grouping.group_map().ravel()).to(self.run.device)

    # --- statistics -------------------------------------------------------------------------------------------
    def initial(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean offset mu_y (G, C), target t (G, C) and covariance (G, C, C) of the raw data."""
        n = self.stats.count.clamp(min=1)[:, None]
        mu_y = self.stats.sum / n
        cov = self.stats.gram / n[:, :, None] - mu_y[:, :, None] * mu_y[:, None, :]
        return mu_y, self.run.template * (self.stats.shift + mu_y), cov

    def updated(
        self, t_prev: torch.Tensor, moments: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Mean offset, target and covariance of x - a t_prev from the first pass's sums (low-rank update).

        The covariance is returned as ``(U, M)`` with ``C = G / N + U M U^T``, ``U = [t_prev, V, mu_y]``.
        """
        a1, a2, v = moments
        n = self.stats.count.clamp(min=1)
        mu_y = (self.stats.sum - a1[:, None] * t_prev) / n[:, None]
        basis = torch.stack([t_prev, v, mu_y], dim=2)  # (G, C, 3)
        coef = torch.zeros(n.numel(), 3, 3, dtype=torch.float64, device=n.device)
        coef[:, 0, 0] = a2 / n
        coef[:, 0, 1] = coef[:, 1, 0] = -1.0 / n
        coef[:, 2, 2] = -1.0
        return mu_y, self.run.template * (self.stats.shift + mu_y), (basis, coef)

    def covariance(self, low_rank: tuple[torch.Tensor, torch.Tensor], groups: Any = slice(None)) -> torch.Tensor:
        """Dense covariance ``G / N + U M U^T`` (G, C, C) of the selected ``groups``."""
        basis, coef = low_rank[0][groups], low_rank[1][groups]
        n = self.stats.count[groups].clamp(min=1)[:, None, None]
        return self.stats.gram[groups] / n + basis @ coef @ basis.transpose(1, 2)

    def filter_vector(
        self, t: torch.Tensor, cov: torch.Tensor, clamp: bool, groups: Any = slice(None)
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """C^-1 t and the normaliser t.C^-1 t (clamped at 1 inside the iterations, like mag1c) of ``groups``."""
        cit, _ = solve(cov, t, self.shrinkage[groups], self.what, self.stats.count[groups])
        norm = (t * cit).sum(-1)
        return cit, (norm.clamp(min=1.0) if clamp else norm)

    def low_rank_filter(self, t: torch.Tensor, low_rank: tuple[torch.Tensor, torch.Tensor]) -> tuple:
        """C^-1 t by Woodbury from a once-inverted G / N.

        Groups with shrinkage or a singular G / N (all groups without the Woodbury shortcut) get a batched
        Cholesky of the dense covariance instead.
        """
        if self.second_moment_inverse is None:
            return self.filter_vector(t, self.covariance(low_rank), clamp=True)
        inverse, dense = self.second_moment_inverse
        basis, coef = low_rank
        solved = inverse @ torch.cat([basis, t[:, :, None]], dim=2)  # B^-1 [U, t]
        inner = basis.transpose(1, 2) @ solved  # U^T B^-1 [U, t]: (G, 3, 4)
        system = torch.eye(3, dtype=t.dtype, device=t.device) + coef @ inner[:, :, :3]
        z = _solve3(system, (coef @ inner[:, :, 3:])[..., 0])
        cit = solved[:, :, 3] - (solved[:, :, :3] @ z[:, :, None])[..., 0]
        norm = (t * cit).sum(-1).clamp(min=1.0)
        if bool(dense.any()):
            cit[dense], norm[dense] = self.filter_vector(t[dense], self.covariance(low_rank, dense), True, dense)
        return cit, norm

    # --- passes ---------------------------------------------------------------------------------------------
    def dense_pass(self, mu_y: torch.Tensor, cit: torch.Tensor, norm: torch.Tensor, first: bool) -> tuple:
        """Update alpha (and, on the first pass, R, |y| and the active set) for all pixels; next moments."""
        g, c, dev = self.run.grouping.n_groups, self.run.prepared.n_bands, self.run.device
        a1 = torch.zeros(g, dtype=torch.float64, device=dev)
        a2 = torch.zeros(g, dtype=torch.float64, device=dev)
        v = torch.zeros(g, c, dtype=torch.float64, device=dev)
        mean = self.stats.shift + mu_y
        unit_mean = (mean / (mean * mean).sum(-1, keepdim=True)).to(torch.float32)
        shift32, mu32, cit32 = (t.to(torch.float32) for t in (self.stats.shift, mu_y, cit))
        for window, gid, data, valid in self._blocks():
            if self.resident is None:
                y = (data - shift32[gid][:, None, :]).mul_(valid[:, :, None])  # exact in float32
            else:
                y = data  # already shifted
            functionals = torch.stack([cit32[gid], unit_mean[gid]], dim=1)  # (W, 2, C)
            # (2, C) x (C, h) per column: much faster than the (h, C) x (C, 2) product on CPU
            values = torch.bmm(functionals, y.transpose(1, 2)).to(torch.float64)
            values -= (functionals @ mu32[gid][:, :, None]).to(torch.float64)  # (x - mu) . [C^-1 t, mu/|mu|^2]
            if first:
                self._init_pixels(window, y, values[:, 1], valid)
            alpha = self._alpha(window, values[:, 0], norm[gid][:, None], first) * valid
            self._image(self.alpha, window).copy_(alpha)
            a = self.flags.update_scaling * self._image(self.ratio, window) * alpha
            group_add(a1, gid, a.sum(1))
            group_add(a2, gid, a.square().sum(1))
            group_add(v, gid, torch.bmm(a.to(torch.float32)[:, None, :], y)[:, 0])
        return a1, a2, v

    def _blocks(self) -> Iterator[tuple[tuple[slice, slice], torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(image window, column groups, (w, h, C) data, (w, h) validity) of each block of pixels.

        Resident cube: contiguous blocks of whole columns (batched products on views with gaps between
        the batch items fall back to slow per-item copies); else row chunks read from the cube.
        """
        if self.resident is None:
            for chunk in iter_chunks(self.run.prepared, self.run.grouping, self.run.device):
                gid = chunk_groups(self.run.grouping, chunk.r0, self.run.device)
                yield (slice(chunk.r0, chunk.r1), slice(None)), gid, chunk.data, chunk.valid
            return
        cube, valid = self.resident[1], self.resident[2]
        groups = torch.from_numpy(self.run.grouping.column_groups()).to(self.run.device)
        for c0 in range(0, self.width, COLUMNS_PER_STEP):
            c1 = min(c0 + COLUMNS_PER_STEP, self.width)
            yield (slice(None), slice(c0, c1)), groups[c0:c1], cube[c0:c1], valid[c0:c1]

    def _image(self, image: torch.Tensor, window: tuple[slice, slice]) -> torch.Tensor:
        """A per-pixel (H * W) array's block as a (w, h) view."""
        return image.view(self.height, self.width)[window].T

    def _init_pixels(
        self, window: tuple[slice, slice], y: torch.Tensor, albedo: torch.Tensor, valid: torch.Tensor
    ) -> None:
        """Store R = x.mu / mu.mu and |x - m| (with a margin for float32 rounding) of a block."""
        if self.flags.albedo:
            self._image(self.ratio, window).copy_(torch.where(valid, 1.0 + albedo, 1.0))
        self._image(self.norm, window).copy_(y.norm(dim=-1).to(torch.float64) * (1 + 1e-4))

    def _alpha(self, window: tuple[slice, slice], proj: torch.Tensor, norm: torch.Tensor, first: bool) -> torch.Tensor:
        """New alpha of a block (w, h) from projections; uses the previous alpha for the weights."""
        ratio = self._image(self.ratio, window)
        if first:
            alpha = proj / (ratio * norm)
            return alpha.clamp(min=0) if self.flags.nonnegative else alpha
        prev = self._image(self.alpha, window)
        weight = 1.0 / (ratio * (prev + EPSILON)) if self.flags.sparsity else 0.0
        return ((proj - weight) / (ratio * norm)).clamp(min=0)

    # --- compiled CPU path (column groups, non-negative, reweighted) ----------------------------------------
    def _compiled_run(self, mu_y: torch.Tensor, t: torch.Tensor, cit: torch.Tensor, norm: torch.Tensor,
                      num_iter: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """First pass and all iterations by compiled kernels (:mod:`.candidates`); returns the output images."""
        _, cube, valid = self.resident
        groups = self.run.grouping.column_groups()
        candidates = ColumnCandidates(cube.reshape(-1, cube.shape[-1]), valid, groups, self.flags.update_scaling)
        mean = self.stats.shift + mu_y
        moments = candidates.first_pass(mu_y, cit, norm, mean / (mean * mean).sum(-1, keepdim=True), self.flags.albedo)
        if num_iter:
            inverse, dense = self._group_inverses()
            self.final, self.relisted = candidates.iterate(
                self.stats, (inverse, dense, self.shrinkage), self.run.template, (t, moments), num_iter, self.what
            )
        self.alpha, self.ratio = candidates.images()
        return self._images()

    def _group_inverses(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(G / N)^-1`` per group (row-major) and the (G,) groups that need a dense solve every iteration.

        Those are the groups with shrinkage or a singular G / N; their inverse is the identity (unused).
        """
        n = self.stats.count.clamp(min=1)[:, None, None]
        eye = torch.eye(self.stats.gram.shape[-1], dtype=torch.float64, device=n.device)
        matrix = self.stats.gram / n  # in-place edits below: few (G, C, C) temporaries
        matrix[self.stats.count == 0] = eye
        factor, info = torch.linalg.cholesky_ex(matrix)
        del matrix
        singular = info > 0
        if bool(singular.any()):
            factor[singular] = eye
        return torch.cholesky_inverse(factor).mT, singular | (self.shrinkage != 0)

    # --- driver ---------------------------------------------------------------------------------------------
    def execute(self, num_iter: int) -> tuple[np.ndarray, np.ndarray]:
        """Run the filter; returns the enhancement (ppm*m) and albedo factor images, NaN where invalid."""
        mu_y, t, cov = self.initial()
        cit, norm = self.filter_vector(t, cov, clamp=False)
        self.final = (self.stats.shift + mu_y, cit, norm)
        if self.compiled:
            return self._compiled_run(mu_y, t, cit, norm, num_iter)
        # Woodbury updates need a well-conditioned update: without the first clip at 0 the first update can
        # make the covariance numerically singular (mag1c 1.2.0 then fails), so each iteration factorizes it,
        # with the singular-group fallback of :func:`.linalg.solve`.
        woodbury = num_iter > 0 and self.flags.nonnegative
        self.second_moment_inverse = self._group_inverses() if woodbury else None
        moments = self.dense_pass(mu_y, cit, norm, first=True)
        for _ in range(num_iter):
            mu_y, t_new, low_rank = self.updated(t, moments)
            cit, norm = self.low_rank_filter(t_new, low_rank)
            self.final = (self.stats.shift + mu_y, cit, norm)
            if self.pack is None and self.flags.sparsity and bool((self.alpha >= 0).all()):
                self._start_pack()
            if self.pack is None:
                moments = self.dense_pass(mu_y, cit, norm, first=False)
            else:
                moments = self.sparse_pass(mu_y, cit, norm)
            t = t_new
        if self.pack is not None:
            self._store()
        return self._images()

    def _images(self) -> tuple[np.ndarray, np.ndarray]:
        alpha = (self.alpha * TARGET_SCALING).to(torch.float32).cpu().numpy().reshape(self.height, self.width)
        ratio = self.ratio.to(torch.float32).cpu().numpy().reshape(self.height, self.width)
        alpha[~self.valid] = np.nan
        ratio[~self.valid] = np.nan
        return alpha, ratio


def _solve3(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Solve batched 3 x 3 systems ``a z = b`` by Cramer's rule (vectorised; LAPACK loops are slow here)."""
    det = _det3(a)
    out = torch.empty_like(b)
    for j in range(3):
        aj = a.clone()
        aj[:, :, j] = b
        out[:, j] = _det3(aj) / det
    return out


def _det3(a: torch.Tensor) -> torch.Tensor:
    return (
        a[:, 0, 0] * (a[:, 1, 1] * a[:, 2, 2] - a[:, 1, 2] * a[:, 2, 1])
        - a[:, 0, 1] * (a[:, 1, 0] * a[:, 2, 2] - a[:, 1, 2] * a[:, 2, 0])
        + a[:, 0, 2] * (a[:, 1, 0] * a[:, 2, 1] - a[:, 1, 1] * a[:, 2, 0])
    )
