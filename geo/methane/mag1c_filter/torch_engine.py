"""Mag1c by torch operations, batched over all statistics groups per iteration (GPU, tiles, ``engine="torch"``).

Column groups keep the cube resident (:mod:`.resident`); tiles re-read it in row chunks. The first pass and
any iteration before the candidates are packed update every pixel (dense passes); after that only the packed
candidates are updated (:class:`.packed_candidates.PackedCandidates`), with C^-1 t from the Woodbury update
(:class:`.filter_vectors.FilterVectors`). A progress bar ("mag1c") advances once per pass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import torch

from hyperplex.common.progress import progress
from hyperplex.geo.methane.grouping import chunk_groups, iter_chunks
from hyperplex.geo.methane.mag1c_filter.engine import Mag1cResult, output_images
from hyperplex.geo.methane.mag1c_filter.filter_vectors import FilterVectors
from hyperplex.geo.methane.mag1c_filter.packed_candidates import SEGMENT, PackedCandidates, PixelState
from hyperplex.geo.methane.mag1c_filter.resident import COLUMNS_PER_STEP, read_torch
from hyperplex.geo.methane.mag1c_filter.settings import EPSILON, Mag1cSettings
from hyperplex.geo.methane.runner import Setup
from hyperplex.geo.methane.stats import accumulate, group_add

__all__ = ["TorchEngine"]

#: A block of pixels: image window, column groups (w,), (w, h, C) data, (w, h) validity and statistics pixels.
Block = tuple[tuple[slice, slice], torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


class TorchEngine:
    """Mag1c by torch operations: any grouping, device and settings."""

    def run(self, run: Setup, settings: Mag1cSettings) -> Mag1cResult:
        """Read the statistics, then the dense first pass and the iterations."""
        run = dataclasses.replace(run, prepared=run.prepared.in_memory())  # lazy inputs: read the bands once
        return _TorchRun(run, settings).execute()


class _TorchRun:
    """State of one torch Mag1c run: group statistics, per-pixel state, resident cube (column groups)."""

    def __init__(self, run: Setup, settings: Mag1cSettings) -> None:
        self.run, self.settings = run, settings
        self.height, self.width = run.prepared.shape
        self.valid = np.zeros(run.prepared.shape, dtype=bool)
        self.resident = None
        if run.grouping.kind == "column":
            lead = SEGMENT * run.grouping.n_groups  # room for packing the candidates in place
            self.resident, self.stats = read_torch(run.prepared, run.grouping, run.device, lead)
            self.valid[:] = self.resident.valid.T.cpu().numpy()
        else:
            self.stats = accumulate(run.prepared, run.grouping, run.device, valid_out=self.valid)
        self.pixels = self._pixel_state()

    def _pixel_state(self) -> PixelState:
        dev, size = self.run.device, self.height * self.width
        valid = torch.from_numpy(self.valid.ravel()).to(dev)
        mask = self.run.prepared.stats_mask
        stats = valid if mask is None else torch.from_numpy((self.valid & ~mask).ravel()).to(dev)
        return PixelState(
            alpha=torch.zeros(size, dtype=torch.float64, device=dev),
            ratio=torch.ones(size, dtype=torch.float64, device=dev),
            norm=torch.zeros(size, dtype=torch.float64, device=dev),
            valid=valid,
            stats=stats,
            groups=torch.from_numpy(self.run.grouping.group_map().ravel()).to(dev),
            width=self.width,
        )

    def execute(self) -> Mag1cResult:
        """Run the filter; the enhancement (ppm·m) and albedo factor images, NaN where invalid."""
        settings = self.settings
        vectors = FilterVectors(self.stats, self.run.template, settings.shrinkage, settings.what)
        mu_y, t, cov = vectors.initial()
        cit, norm = vectors.dense(t, cov, clamp=False)
        final = (self.stats.shift + mu_y, cit, norm)
        # Woodbury updates need a well-conditioned update: without the first clip at 0 the first update can
        # make the covariance numerically singular (mag1c 1.2.0 then fails), so each iteration factorizes it,
        # with the singular-group fallback of :func:`hyperplex.geo.methane.linalg.solve`.
        woodbury = settings.num_iter > 0 and settings.nonnegative
        inverses = vectors.second_moment_inverses() if woodbury else None
        with progress(total=settings.num_iter + 1, desc="mag1c", unit="pass") as bar:
            moments = self.dense_pass(mu_y, cit, norm, first=True)
            bar.update(1)
            packed = None
            for _ in range(settings.num_iter):
                mu_y, t_new, low_rank = vectors.updated(t, moments)
                cit, norm = vectors.woodbury(t_new, low_rank, inverses)
                final = (self.stats.shift + mu_y, cit, norm)
                if packed is None and settings.sparsity and bool((self.pixels.alpha >= 0).all()):
                    packed = self._pack()
                if packed is None:
                    moments = self.dense_pass(mu_y, cit, norm, first=False)
                else:
                    moments = packed.sweep(mu_y, cit, norm)
                t = t_new
                bar.update(1)
        if packed is not None:
            packed.store()
        return Mag1cResult(*output_images(self.pixels.alpha, self.pixels.ratio, self.valid), final)

    def _pack(self) -> PackedCandidates:
        """The packed candidates; they take over (and compact) the resident cube."""
        resident, self.resident = self.resident, None
        grouping, n_bands = self.run.grouping, self.run.prepared.n_bands
        scaling = self.settings.update_scaling
        return PackedCandidates(self.pixels, grouping.n_groups, n_bands, scaling, self._read, resident)

    def _read(self, index: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
        """Shifted spectra (n, C) float32 of the pixels at flat image indices ``index`` (in groups ``group``)."""
        idx = index.cpu().numpy()
        spectra = torch.from_numpy(self.run.prepared.gather(idx // self.width, idx % self.width)).to(self.run.device)
        return spectra - self.stats.shift.to(torch.float32)[group]

    def dense_pass(self, mu_y: torch.Tensor, cit: torch.Tensor, norm: torch.Tensor, first: bool) -> tuple:
        """Update alpha (and, on the first pass, R and |y|) for all pixels; returns the next moments."""
        g, c, dev = self.run.grouping.n_groups, self.run.prepared.n_bands, self.run.device
        a1 = torch.zeros(g, dtype=torch.float64, device=dev)
        a2 = torch.zeros(g, dtype=torch.float64, device=dev)
        v = torch.zeros(g, c, dtype=torch.float64, device=dev)
        mean = self.stats.shift + mu_y
        unit_mean = (mean / (mean * mean).sum(-1, keepdim=True)).to(torch.float32)
        shift32, mu32, cit32 = (t.to(torch.float32) for t in (self.stats.shift, mu_y, cit))
        for window, gid, data, valid, in_stats in self._blocks():
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
            self._image(self.pixels.alpha, window).copy_(alpha)
            a = self.settings.update_scaling * self._image(self.pixels.ratio, window) * alpha
            if in_stats is not valid:
                a = a * in_stats
            group_add(a1, gid, a.sum(1))
            group_add(a2, gid, a.square().sum(1))
            group_add(v, gid, torch.bmm(a.to(torch.float32)[:, None, :], y)[:, 0])
        return a1, a2, v

    def _blocks(self) -> Iterator[Block]:
        """The pixels block by block (see :data:`Block`).

        Resident cube: contiguous blocks of whole columns (batched products on views with gaps between
        the batch items fall back to slow per-item copies); else row chunks read from the cube.
        """
        if self.resident is None:
            for chunk in iter_chunks(self.run.prepared, self.run.grouping, self.run.device):
                gid = chunk_groups(self.run.grouping, chunk.r0, self.run.device)
                yield (slice(chunk.r0, chunk.r1), slice(None)), gid, chunk.data, chunk.valid, chunk.stats
            return
        cube, valid, in_stats = self.resident.cube, self.resident.valid, self.resident.stats
        groups = torch.from_numpy(self.run.grouping.column_groups()).to(self.run.device)
        for c0 in range(0, self.width, COLUMNS_PER_STEP):
            c1 = min(c0 + COLUMNS_PER_STEP, self.width)
            columns = slice(c0, c1)
            yield (slice(None), columns), groups[columns], cube[columns], valid[columns], in_stats[columns]

    def _image(self, image: torch.Tensor, window: tuple[slice, slice]) -> torch.Tensor:
        """A per-pixel (H * W) array's block as a (w, h) view."""
        return image.view(self.height, self.width)[window].T

    def _init_pixels(
        self, window: tuple[slice, slice], y: torch.Tensor, albedo: torch.Tensor, valid: torch.Tensor
    ) -> None:
        """Store R = x.mu / mu.mu and |x - m| (with a margin for float32 rounding) of a block."""
        if self.settings.albedo:
            self._image(self.pixels.ratio, window).copy_(torch.where(valid, 1.0 + albedo, 1.0))
        self._image(self.pixels.norm, window).copy_(y.norm(dim=-1).to(torch.float64) * (1 + 1e-4))

    def _alpha(self, window: tuple[slice, slice], proj: torch.Tensor, norm: torch.Tensor, first: bool) -> torch.Tensor:
        """New alpha of a block (w, h) from projections; uses the previous alpha for the weights."""
        ratio = self._image(self.pixels.ratio, window)
        if first:
            alpha = proj / (ratio * norm)
            return alpha.clamp(min=0) if self.settings.nonnegative else alpha
        prev = self._image(self.pixels.alpha, window)
        weight = 1.0 / (ratio * (prev + EPSILON)) if self.settings.sparsity else 0.0
        return ((proj - weight) / (ratio * norm)).clamp(min=0)
