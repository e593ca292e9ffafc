"""Mag1c's packed candidate pixels for the torch path (GPU, or ``engine="torch"``).

After the first pass, pixels whose alpha is 0 provably stay 0 (the bound in :meth:`PackedCandidates._failing`),
so the iterations only touch the candidates (alpha > 0), packed into a dense (segments, SEGMENT, C) tensor,
each segment holding pixels of one statistics group, and re-packed as they drop out. This is a mixin of
:class:`hyperplex.geo.methane.mag1c_filter.Mag1cSolver`, which owns the state it uses (per-pixel alpha, R and
|y - m|, the resident cube, the group statistics).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["EPSILON", "SEGMENT", "PackedCandidates"]

EPSILON = 1e-9
#: Pixels per segment of the packed candidate set (each segment holds pixels of one group).
SEGMENT = 32
#: Segments per block of the sparse iterations (about 6 MiB of 49-band spectra: stays in the last-level cache).
BLOCK_SEGMENTS = 1024
#: Repack the candidates when fewer than this fraction of the packed slots are still alive.
REPACK_FILL = 0.5
#: Spectra moved per step when (re)packing.
STAGE_ROWS = 1 << 16


@dataclass
class _Packed:
    """Candidate pixels in segments of one group each: flat index, slot mask, y = x - m, R, alpha (S, L); group (S,)."""

    index: torch.Tensor
    mask: torch.Tensor
    y: torch.Tensor
    ratio: torch.Tensor
    alpha: torch.Tensor
    group: torch.Tensor


class PackedCandidates:
    """Sparse iterations over packed candidates (mixin; see the module docstring)."""

    def sparse_pass(self, mu_y: torch.Tensor, cit: torch.Tensor, norm: torch.Tensor) -> tuple:
        """Update alpha on the packed candidates only (all other pixels are certified to stay 0).

        The packed spectra are visited in blocks of :data:`BLOCK_SEGMENTS` segments, each read once from
        memory for both of its products (projection, then V) while it is in cache. Works in preallocated
        buffers (fresh multi-megabyte temporaries cost page faults every iteration).
        """
        self._admit(mu_y, cit)
        pk = self.pack
        g, n_seg = pk.group, pk.alpha.shape[0]
        rows32, rows64 = self._rows(n_seg, pk.y.shape[-1])
        cit32, offset = cit.to(torch.float32), (mu_y * cit).sum(-1)
        for s0 in range(0, n_seg, BLOCK_SEGMENTS):
            self._update_block(slice(s0, min(s0 + BLOCK_SEGMENTS, n_seg)), cit32, offset, norm, rows32)
        rows64.copy_(rows32)
        n_groups, n_bands = self.run.grouping.n_groups, self.run.prepared.n_bands
        a = pk.ratio * self.flags.update_scaling * pk.alpha
        zeros = torch.zeros(n_groups, dtype=torch.float64, device=a.device)
        v = torch.zeros(n_groups, n_bands, dtype=torch.float64, device=a.device).index_add_(0, g, rows64)
        moments = (zeros.index_add(0, g, a.sum(1)), zeros.index_add(0, g, a.square().sum(1)), v)
        if int(((pk.alpha > 0) | (pk.ratio <= 0)).sum()) < REPACK_FILL * pk.alpha.numel() and pk.alpha.shape[0] > 1:
            self._repack()
        return moments

    def _update_block(
        self, part: slice, cit32: torch.Tensor, offset: torch.Tensor, norm: torch.Tensor, rows32: torch.Tensor
    ) -> None:
        """New alpha of the segments ``part`` and their rows of ``sum a y`` (into ``rows32``)."""
        pk = self.pack
        y, g, ratio, alpha = pk.y[part], pk.group[part], pk.ratio[part], pk.alpha[part]
        proj, work, single, cit_rows = self._block_workspace(alpha.shape, y.shape[-1])
        torch.index_select(cit32, 0, g, out=cit_rows)
        torch.bmm(cit_rows[:, None, :], y.transpose(1, 2), out=single[:, None, :])
        proj.copy_(single).sub_(offset[g][:, None])
        proj.sub_(torch.add(alpha, EPSILON, out=work).mul_(ratio).reciprocal_())  # reweighting term
        proj.div_(torch.mul(ratio, norm[g][:, None], out=work)).clamp_(min=0).mul_(pk.mask[part])
        alpha.copy_(proj)
        single.copy_(torch.mul(ratio, self.flags.update_scaling, out=work).mul_(alpha))
        torch.bmm(single[:, None, :], y, out=rows32[part][:, None, :])

    def _rows(self, segments: int, n_bands: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Reused float32 and float64 (segments, C) buffers for the per-segment sums of a y."""
        if self.rows is None or self.rows[0].numel() < segments * n_bands:
            size, dev = segments * n_bands, self.run.device
            self.rows = tuple(torch.empty(size, dtype=d, device=dev) for d in (torch.float32, torch.float64))
        return tuple(r[: segments * n_bands].view(segments, n_bands) for r in self.rows)

    def _block_workspace(self, shape: torch.Size, n_bands: int) -> tuple[torch.Tensor, ...]:
        """Buffers for one block: two float64 and one float32 (s, L), one float32 (s, C)."""
        if self.work is None:
            dev, slots = self.run.device, BLOCK_SEGMENTS * SEGMENT
            self.work = (
                *(torch.empty(slots, dtype=torch.float64, device=dev) for _ in range(2)),
                torch.empty(slots, dtype=torch.float32, device=dev),
                torch.empty(BLOCK_SEGMENTS * n_bands, dtype=torch.float32, device=dev),
            )
        slots = shape[0] * shape[1]
        return (*(w[:slots].view(shape) for w in self.work[:3]), self.work[3][: shape[0] * n_bands].view(-1, n_bands))

    # --- candidate set --------------------------------------------------------------------------------------
    def _start_pack(self) -> None:
        """Pack the pixels with alpha > 0 (and any with R <= 0) and the per-group bound terms."""
        candidates = self.valid_t & ((self.alpha > 0) | (self.ratio <= 0))
        if self.resident is None:
            self.pack = self._pack(torch.nonzero(candidates)[:, 0])
        else:  # compact the resident cube in place (row lead + w H + r holds pixel r W + w)
            buffer, self.resident = self.resident[0], None
            lead = buffer.shape[0] - self.height * self.width
            col, row = torch.nonzero(candidates.view(self.height, self.width).T).unbind(1)  # column-major order
            source = lead + col * self.height + row
            self.pack = self._pack(row * self.width + col, (buffer, source), presorted=True)
        self.bound_terms = self._bound_terms()

    def _bound_terms(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per group: max R |y - m| and max R over valid pixels with R > 0 (for the bound in :meth:`_failing`)."""
        positive = self.valid_t & (self.ratio > 0)
        scaled = torch.where(positive, self.norm * self.ratio, 0.0)
        zeros = torch.zeros(self.run.grouping.n_groups, dtype=torch.float64, device=self.run.device)
        return (
            zeros.scatter_reduce(0, self.groups, scaled, "amax"),
            zeros.scatter_reduce(0, self.groups, torch.where(positive, self.ratio, 0.0), "amax"),
        )

    def _pack(
        self, index: torch.Tensor, reuse: tuple[torch.Tensor, torch.Tensor] | None = None, presorted: bool = False
    ) -> _Packed:
        """Pack pixels ``index`` into segments of SEGMENT pixels of one group, sorted by (group, column, row).

        Spectra are read from the cube, or, with ``reuse=(tensor, source_positions)``, moved within the old
        packed tensor or the resident pixel-major cube (compaction in place: every row moves towards the
        front, so no copy is needed). ``presorted``: ``index`` is already in that order (no sort).
        """
        dev, g_count, n_bands = self.run.device, self.run.grouping.n_groups, self.run.prepared.n_bands
        group = self.groups[index]
        if presorted:  # column grouping, pixels in column-major order
            order = torch.arange(index.numel(), device=dev)
        else:
            column_major = (index % self.width) * self.height + index // self.width
            order = torch.argsort(group * self.groups.numel() + column_major)
        index, group = index[order], group[order]
        counts = torch.bincount(group, minlength=g_count)
        rank = torch.arange(index.numel(), device=dev) - (torch.cumsum(counts, 0) - counts)[group]
        per_group = (counts + SEGMENT - 1) // SEGMENT
        position = ((torch.cumsum(per_group, 0) - per_group)[group] + rank // SEGMENT) * SEGMENT + rank % SEGMENT
        n_seg = max(int(per_group.sum()), 1)
        seg_group = torch.repeat_interleave(torch.arange(g_count, device=dev), per_group)
        seg_group = seg_group if seg_group.numel() else torch.zeros(1, dtype=torch.int64, device=dev)
        if reuse is None:
            packed = torch.zeros(n_seg, SEGMENT, n_bands, dtype=torch.float32, device=dev)
        else:
            packed = reuse[0].view(-1, n_bands)[: n_seg * SEGMENT].view(n_seg, SEGMENT, n_bands)
        flat_packed = packed.view(-1, n_bands)
        for part in torch.split(torch.arange(index.numel(), device=dev), STAGE_ROWS):
            if reuse is None:
                rows = self._read(index[part], group[part])
            else:
                source = reuse[1][order[part]]
                rows = torch.index_select(reuse[0].view(-1, n_bands), 0, source, out=self._stage(part.numel()))
            flat_packed.index_copy_(0, position[part], rows)
        flat = torch.zeros(n_seg * SEGMENT, dtype=torch.int64, device=dev).index_copy_(0, position, index)
        mask = torch.zeros(n_seg * SEGMENT, dtype=torch.bool, device=dev)
        mask[position] = True
        if reuse is not None:
            # padding slots must hold finite values (they are multiplied by 0); only they are written
            flat_packed.index_fill_(0, torch.nonzero(~mask)[:, 0], 0.0)
        flat, mask = flat.view(n_seg, SEGMENT), mask.view(n_seg, SEGMENT)
        ratio = torch.where(mask, self.ratio[flat], 1.0)
        return _Packed(flat, mask, packed, ratio, torch.where(mask, self.alpha[flat], 0.0), seg_group)

    def _read(self, index: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
        idx = index.cpu().numpy()
        spectra = torch.from_numpy(self.run.prepared.gather(idx // self.width, idx % self.width)).to(self.run.device)
        return spectra - self.stats.shift.to(torch.float32)[group]

    def _stage(self, rows: int) -> torch.Tensor:
        """A reused (rows, C) float32 staging buffer for moving spectra (rows <= STAGE_ROWS)."""
        if self.stage is None:
            n_bands = self.run.prepared.n_bands
            self.stage = torch.empty(STAGE_ROWS, n_bands, dtype=torch.float32, device=self.run.device)
        return self.stage[:rows]

    def _store(self) -> None:
        """Write the packed alpha back into the full image."""
        pk = self.pack
        self.alpha[pk.index[pk.mask]] = pk.alpha[pk.mask]

    def _repack(self) -> None:
        """Drop the pixels whose alpha fell to 0: order-preserving compaction in place (no sort)."""
        pk = self.pack
        self._store()
        keep = (pk.mask & ((pk.alpha > 0) | (pk.ratio <= 0))).view(-1)
        per_group = self._kept_segments(keep)
        position = self._kept_positions(keep, per_group)
        n_seg, n_bands, dev = max(int(per_group.sum()), 1), pk.y.shape[-1], keep.device
        old = pk.y.view(-1, n_bands)
        new = old[: n_seg * SEGMENT]
        step = STAGE_ROWS
        for start in range(0, keep.numel(), step):  # destinations never pass their sources
            part = keep[start : start + step]
            source = torch.nonzero(part)[:, 0]
            rows = torch.index_select(old, 0, source + start, out=self._stage(source.numel()))
            new.index_copy_(0, position[start : start + step][part], rows)
        where, slots = position[keep], n_seg * SEGMENT
        index = torch.zeros(slots, dtype=torch.int64, device=dev).index_copy_(0, where, pk.index.view(-1)[keep])
        mask = torch.zeros(slots, dtype=torch.bool, device=dev).index_fill_(0, where, True)
        ratio = torch.ones(slots, dtype=torch.float64, device=dev).index_copy_(0, where, pk.ratio.view(-1)[keep])
        alpha = torch.zeros(slots, dtype=torch.float64, device=dev).index_copy_(0, where, pk.alpha.view(-1)[keep])
        group = torch.repeat_interleave(torch.arange(per_group.numel(), device=dev), per_group)
        group = group if group.numel() else torch.zeros(1, dtype=torch.int64, device=dev)
        shape = (n_seg, SEGMENT)
        self.pack = _Packed(
            index.view(shape), mask.view(shape), new.view(*shape, n_bands), ratio.view(shape), alpha.view(shape), group
        )

    def _kept_segments(self, keep: torch.Tensor) -> torch.Tensor:
        """Segments per group needed for the kept pixels."""
        per_segment = keep.view(-1, SEGMENT).sum(1)
        counts = torch.zeros(self.run.grouping.n_groups, dtype=torch.int64, device=keep.device)
        counts.index_add_(0, self.pack.group, per_segment)
        return (counts + SEGMENT - 1) // SEGMENT

    def _kept_positions(self, keep: torch.Tensor, per_group: torch.Tensor) -> torch.Tensor:
        """New slot of every old slot (meaningful where ``keep``); groups stay in order, in whole segments."""
        old_segments = torch.bincount(self.pack.group, minlength=per_group.numel())
        old_start = (torch.cumsum(old_segments, 0) - old_segments) * SEGMENT
        before = torch.cumsum(keep, 0) - keep.to(torch.int64)  # kept slots before each slot
        before_ext = torch.cat([before, before.new_tensor([int(keep.sum())])])
        slot_group = self.pack.group.repeat_interleave(SEGMENT)
        rank = before - before_ext[old_start.clamp(max=keep.numel())][slot_group]
        new_start = (torch.cumsum(per_group, 0) - per_group) * SEGMENT
        return new_start[slot_group] + rank

    def _admit(self, mu_y: torch.Tensor, cit: torch.Tensor) -> None:
        """Certify per group that unpacked pixels stay 0; re-pack with any pixel that is not certified."""
        failing = self._failing(mu_y, cit)
        if not bool(failing.any()):
            return
        self._store()
        inside = torch.zeros_like(self.valid_t)
        inside[self.pack.index[self.pack.mask]] = True
        pixel = (self.norm + mu_y.norm(dim=-1)[self.groups]) * cit.norm(dim=-1)[self.groups] * self.ratio * EPSILON
        unsafe = self.valid_t & ~inside & failing[self.groups] & (pixel >= 1.0 - 1e-6)
        if bool(unsafe.any()):
            self.pack = self._pack(torch.nonzero(inside | unsafe)[:, 0])

    def _failing(self, mu_y: torch.Tensor, cit: torch.Tensor) -> torch.Tensor:
        """(G,) bool: groups where pixels at alpha = 0 are not certified to stay 0 this iteration."""
        scaled, ratio_max = self.bound_terms
        bound = (scaled + mu_y.norm(dim=-1) * ratio_max) * cit.norm(dim=-1) * EPSILON
        return bound >= 1.0 - 1e-6
