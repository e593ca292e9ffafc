"""Mag1c's packed candidate pixels for the torch engine (GPU, tiles, or ``engine="torch"``).

After the first pass, pixels whose alpha is 0 provably stay 0 (the bound in :meth:`PackedCandidates.failing`),
so the iterations only touch the candidates (alpha > 0), packed into a dense (segments, SEGMENT, C) tensor,
each segment holding pixels of one statistics group, and re-packed as they drop out. The component's inputs
are explicit: the per-pixel state it shares with the dense passes (:class:`PixelState`), and where the
spectra come from (the resident cube, compacted in place, or a reader of the prepared cube).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from hyperplex.geo.methane.mag1c_filter.resident import ResidentCube
from hyperplex.geo.methane.mag1c_filter.settings import EPSILON

__all__ = ["SEGMENT", "PackedCandidates", "PixelState"]

#: Pixels per segment of the packed candidate set (each segment holds pixels of one group).
SEGMENT = 32
#: Segments per block of the sparse iterations (about 6 MiB of 49-band spectra: stays in the last-level cache).
BLOCK_SEGMENTS = 1024
#: Repack the candidates when fewer than this fraction of the packed slots are still alive.
REPACK_FILL = 0.5
#: Spectra moved per step when (re)packing.
STAGE_ROWS = 1 << 16


@dataclass
class PixelState:
    """Per-pixel state of a torch Mag1c run, image order (H * W).

    Attributes:
        alpha: Current estimate, float64.
        ratio: Albedo factor R, float64.
        norm: |y - m| (with a margin for float32 rounding), float64: the bound's pixel term.
        valid: Pixels that are filtered, bool.
        stats: Valid pixels that enter the statistics, bool (``valid`` itself without a ``stats_mask``).
        groups: Statistics group of every pixel, int64.
        width: Image width W.
    """

    alpha: torch.Tensor
    ratio: torch.Tensor
    norm: torch.Tensor
    valid: torch.Tensor
    stats: torch.Tensor
    groups: torch.Tensor
    width: int

    @property
    def masked_stats(self) -> bool:
        """Whether some valid pixels stay out of the statistics."""
        return self.stats is not self.valid


@dataclass
class _Packed:
    """Candidate pixels in segments of one group each: flat index, slot mask, y = x - m, R, alpha (S, L); group (S,).

    ``weight`` (S, L) is 1 for slots in the statistics, else 0; None when every valid pixel is.
    """

    index: torch.Tensor
    mask: torch.Tensor
    y: torch.Tensor
    ratio: torch.Tensor
    alpha: torch.Tensor
    group: torch.Tensor
    weight: torch.Tensor | None = None


class PackedCandidates:
    """Sparse iterations over the packed candidates of a torch Mag1c run (see the module docstring).

    Packs the valid pixels with alpha > 0 (and any with R <= 0) on creation.

    Args:
        pixels: The per-pixel state; alpha is read when packing and written back by :meth:`store`.
        n_groups: Number of statistics groups.
        n_bands: Number of bands.
        scaling: Fraction of the signal removed before re-estimating statistics.
        read: ``read(index, group)``: the shifted spectra y = x - m (n, C) float32 of the pixels at flat image
            indices ``index`` in groups ``group`` (read from the cube).
        resident: The resident cube, compacted in place into the packed set (its owner must not read it
            afterwards); None: spectra come from ``read``.
    """

    def __init__(
        self,
        pixels: PixelState,
        n_groups: int,
        n_bands: int,
        scaling: float,
        read: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        resident: ResidentCube | None = None,
    ) -> None:
        self.pixels, self.n_groups, self.n_bands, self.scaling = pixels, n_groups, n_bands, float(scaling)
        self.read = read
        self.device, self.width = pixels.alpha.device, pixels.width
        self.height = pixels.alpha.numel() // pixels.width
        self.rows: tuple[torch.Tensor, ...] | None = None
        self.work: tuple[torch.Tensor, ...] | None = None
        self.stage: torch.Tensor | None = None
        self.pack = self._start(resident)
        #: Per group: max R |y - m| and max R over valid pixels with R > 0 (for the bound in :meth:`failing`).
        self.bound_terms = self._bound_terms()

    def sweep(self, mu_y: torch.Tensor, cit: torch.Tensor, norm: torch.Tensor) -> tuple:
        """Update alpha on the packed candidates only (all other pixels are certified to stay 0).

        The packed spectra are visited in blocks of :data:`BLOCK_SEGMENTS` segments, each read once from
        memory for both of its products (projection, then V) while it is in cache. Works in preallocated
        buffers (fresh multi-megabyte temporaries cost page faults every iteration).

        Returns:
            The moments ``(A1, A2, V)`` per group.
        """
        self._admit(mu_y, cit)
        pk = self.pack
        g, n_seg, n_bands = pk.group, pk.alpha.shape[0], pk.y.shape[-1]
        rows32, rows64 = self._rows(n_seg, n_bands)
        cit32, offset = cit.to(torch.float32), (mu_y * cit).sum(-1)
        for s0 in range(0, n_seg, BLOCK_SEGMENTS):
            self._update_block(slice(s0, min(s0 + BLOCK_SEGMENTS, n_seg)), cit32, offset, norm, rows32)
        rows64.copy_(rows32)
        a = pk.ratio * self.scaling * pk.alpha
        if pk.weight is not None:
            a = a * pk.weight
        zeros = torch.zeros(self.n_groups, dtype=torch.float64, device=a.device)
        v = torch.zeros(self.n_groups, n_bands, dtype=torch.float64, device=a.device).index_add_(0, g, rows64)
        moments = (zeros.index_add(0, g, a.sum(1)), zeros.index_add(0, g, a.square().sum(1)), v)
        if int(((pk.alpha > 0) | (pk.ratio <= 0)).sum()) < REPACK_FILL * pk.alpha.numel() and pk.alpha.shape[0] > 1:
            self._repack()
        return moments

    def store(self) -> None:
        """Write the packed alpha back into the per-pixel state."""
        pk = self.pack
        self.pixels.alpha[pk.index[pk.mask]] = pk.alpha[pk.mask]

    def failing(self, mu_y: torch.Tensor, cit: torch.Tensor) -> torch.Tensor:
        """(G,) bool: groups where pixels at alpha = 0 are not certified to stay 0 this iteration.

        A pixel at 0 has the weight 1 / (R EPSILON) and stays at 0 while (x - mu).C^-1 t <= that weight,
        which holds for all of a group's pixels when (max R |y - m| + |mu_y| max R) |C^-1 t| EPSILON < 1.
        """
        scaled, ratio_max = self.bound_terms
        bound = (scaled + mu_y.norm(dim=-1) * ratio_max) * cit.norm(dim=-1) * EPSILON
        return bound >= 1.0 - 1e-6

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
        single.copy_(torch.mul(ratio, self.scaling, out=work).mul_(alpha))
        if pk.weight is not None:
            single.mul_(pk.weight[part])
        torch.bmm(single[:, None, :], y, out=rows32[part][:, None, :])

    def _rows(self, segments: int, n_bands: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Reused float32 and float64 (segments, C) buffers for the per-segment sums of a y."""
        if self.rows is None or self.rows[0].numel() < segments * n_bands:
            size = segments * n_bands
            self.rows = tuple(torch.empty(size, dtype=d, device=self.device) for d in (torch.float32, torch.float64))
        return tuple(r[: segments * n_bands].view(segments, n_bands) for r in self.rows)

    def _block_workspace(self, shape: torch.Size, n_bands: int) -> tuple[torch.Tensor, ...]:
        """Buffers for one block: two float64 and one float32 (s, L), one float32 (s, C)."""
        if self.work is None:
            dev, slots = self.device, BLOCK_SEGMENTS * SEGMENT
            self.work = (
                *(torch.empty(slots, dtype=torch.float64, device=dev) for _ in range(2)),
                torch.empty(slots, dtype=torch.float32, device=dev),
                torch.empty(BLOCK_SEGMENTS * n_bands, dtype=torch.float32, device=dev),
            )
        slots = shape[0] * shape[1]
        return (*(w[:slots].view(shape) for w in self.work[:3]), self.work[3][: shape[0] * n_bands].view(-1, n_bands))

    # --- candidate set --------------------------------------------------------------------------------------
    def _start(self, resident: ResidentCube | None) -> _Packed:
        """Pack the pixels with alpha > 0 (and any with R <= 0)."""
        px = self.pixels
        candidates = px.valid & ((px.alpha > 0) | (px.ratio <= 0))
        if resident is None:
            return self._pack(torch.nonzero(candidates)[:, 0])
        # compact the resident cube in place (row lead + w H + r holds pixel r W + w)
        col, row = torch.nonzero(candidates.view(self.height, self.width).T).unbind(1)  # column-major order
        source = resident.lead + col * self.height + row
        return self._pack(row * self.width + col, (resident.buffer, source), presorted=True)

    def _bound_terms(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per group: max R |y - m| and max R over valid pixels with R > 0."""
        px = self.pixels
        positive = px.valid & (px.ratio > 0)
        scaled = torch.where(positive, px.norm * px.ratio, 0.0)
        zeros = torch.zeros(self.n_groups, dtype=torch.float64, device=self.device)
        return (
            zeros.scatter_reduce(0, px.groups, scaled, "amax"),
            zeros.scatter_reduce(0, px.groups, torch.where(positive, px.ratio, 0.0), "amax"),
        )

    def _pack(
        self, index: torch.Tensor, reuse: tuple[torch.Tensor, torch.Tensor] | None = None, presorted: bool = False
    ) -> _Packed:
        """Pack pixels ``index`` into segments of SEGMENT pixels of one group, sorted by (group, column, row).

        Spectra are read by ``read``, or, with ``reuse=(tensor, source_positions)``, moved within the old
        packed tensor or the resident pixel-major cube (compaction in place: every row moves towards the
        front, so no copy is needed). ``presorted``: ``index`` is already in that order (no sort).
        """
        dev, groups = self.device, self.pixels.groups
        group = groups[index]
        if presorted:  # column grouping, pixels in column-major order
            order = torch.arange(index.numel(), device=dev)
        else:
            column_major = (index % self.width) * self.height + index // self.width
            order = torch.argsort(group * groups.numel() + column_major)
        index, group = index[order], group[order]
        counts = torch.bincount(group, minlength=self.n_groups)
        rank = torch.arange(index.numel(), device=dev) - (torch.cumsum(counts, 0) - counts)[group]
        per_group = (counts + SEGMENT - 1) // SEGMENT
        position = ((torch.cumsum(per_group, 0) - per_group)[group] + rank // SEGMENT) * SEGMENT + rank % SEGMENT
        n_seg = max(int(per_group.sum()), 1)
        packed = self._packed_spectra(n_seg, reuse)
        self._fill(packed.view(-1, packed.shape[-1]), index, group, position, order, reuse)
        flat = torch.zeros(n_seg * SEGMENT, dtype=torch.int64, device=dev).index_copy_(0, position, index)
        mask = torch.zeros(n_seg * SEGMENT, dtype=torch.bool, device=dev)
        mask[position] = True
        if reuse is not None:
            # padding slots must hold finite values (they are multiplied by 0); only they are written
            packed.view(-1, packed.shape[-1]).index_fill_(0, torch.nonzero(~mask)[:, 0], 0.0)
        flat, mask = flat.view(n_seg, SEGMENT), mask.view(n_seg, SEGMENT)
        return self._packed(flat, mask, packed, _segment_groups(per_group))

    def _packed_spectra(self, n_seg: int, reuse: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        """The (n_seg, SEGMENT, C) float32 tensor of packed spectra: new, or the front of the reused tensor."""
        if reuse is None:
            return torch.zeros(n_seg, SEGMENT, self.n_bands, dtype=torch.float32, device=self.device)
        return reuse[0].view(-1, self.n_bands)[: n_seg * SEGMENT].view(n_seg, SEGMENT, self.n_bands)

    def _fill(self, flat_packed: torch.Tensor, index: torch.Tensor, group: torch.Tensor, position: torch.Tensor,
              order: torch.Tensor, reuse: tuple[torch.Tensor, torch.Tensor] | None) -> None:  # fmt: skip
        """Copy the spectra of the sorted pixels into their slots, :data:`STAGE_ROWS` at a time."""
        n_bands = flat_packed.shape[-1]
        for part in torch.split(torch.arange(index.numel(), device=self.device), STAGE_ROWS):
            if reuse is None:
                rows = self.read(index[part], group[part])
            else:
                source = reuse[1][order[part]]
                rows = torch.index_select(reuse[0].view(-1, n_bands), 0, source, out=self._stage(part.numel(), n_bands))
            flat_packed.index_copy_(0, position[part], rows)

    def _packed(self, flat: torch.Tensor, mask: torch.Tensor, y: torch.Tensor, group: torch.Tensor) -> _Packed:
        """A packed set from its slots' pixels: R, alpha and statistics weights gathered from the pixel state."""
        px = self.pixels
        ratio = torch.where(mask, px.ratio[flat], 1.0)
        alpha = torch.where(mask, px.alpha[flat], 0.0)
        weight = (mask & px.stats[flat]).to(torch.float64) if px.masked_stats else None
        return _Packed(flat, mask, y, ratio, alpha, group, weight)

    def _stage(self, rows: int, n_bands: int) -> torch.Tensor:
        """A reused (rows, C) float32 staging buffer for moving spectra (rows <= STAGE_ROWS)."""
        if self.stage is None:
            self.stage = torch.empty(STAGE_ROWS, n_bands, dtype=torch.float32, device=self.device)
        return self.stage[:rows]

    def _repack(self) -> None:
        """Drop the pixels whose alpha fell to 0: order-preserving compaction in place (no sort)."""
        pk = self.pack
        self.store()
        keep = (pk.mask & ((pk.alpha > 0) | (pk.ratio <= 0))).view(-1)
        per_group = self._kept_segments(keep)
        position = self._kept_positions(keep, per_group)
        n_seg, n_bands, dev = max(int(per_group.sum()), 1), pk.y.shape[-1], keep.device
        old = pk.y.view(-1, n_bands)
        new = old[: n_seg * SEGMENT]
        for start in range(0, keep.numel(), STAGE_ROWS):  # destinations never pass their sources
            part = keep[start : start + STAGE_ROWS]
            source = torch.nonzero(part)[:, 0]
            rows = torch.index_select(old, 0, source + start, out=self._stage(source.numel(), n_bands))
            new.index_copy_(0, position[start : start + STAGE_ROWS][part], rows)
        where, slots = position[keep], n_seg * SEGMENT
        index = torch.zeros(slots, dtype=torch.int64, device=dev).index_copy_(0, where, pk.index.view(-1)[keep])
        mask = torch.zeros(slots, dtype=torch.bool, device=dev).index_fill_(0, where, True)
        shape = (n_seg, SEGMENT)
        self.pack = self._packed(index.view(shape), mask.view(shape), new.view(*shape, n_bands),
                                 _segment_groups(per_group))  # fmt: skip

    def _kept_segments(self, keep: torch.Tensor) -> torch.Tensor:
        """Segments per group needed for the kept pixels."""
        per_segment = keep.view(-1, SEGMENT).sum(1)
        counts = torch.zeros(self.n_groups, dtype=torch.int64, device=keep.device)
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
        failing = self.failing(mu_y, cit)
        if not bool(failing.any()):
            return
        self.store()
        px = self.pixels
        inside = torch.zeros_like(px.valid)
        inside[self.pack.index[self.pack.mask]] = True
        pixel = (px.norm + mu_y.norm(dim=-1)[px.groups]) * cit.norm(dim=-1)[px.groups] * px.ratio * EPSILON
        unsafe = px.valid & ~inside & failing[px.groups] & (pixel >= 1.0 - 1e-6)
        if bool(unsafe.any()):
            self.pack = self._pack(torch.nonzero(inside | unsafe)[:, 0])


def _segment_groups(per_group: torch.Tensor) -> torch.Tensor:
    """The group of each segment, from the segments per group (one segment of group 0 when there are none)."""
    group = torch.repeat_interleave(torch.arange(per_group.numel(), device=per_group.device), per_group)
    return group if group.numel() else torch.zeros(1, dtype=torch.int64, device=per_group.device)
