"""Mag1c's reweighted-L1 iterations on the CPU: one compiled pass over the candidate pixels per iteration.

After the first pass most pixels have alpha = 0 and provably stay there (see :mod:`.mag1c_filter`), so an
iteration only visits the candidates (alpha > 0, or R <= 0). Each group (detector column) owns the rows
``lo:hi`` of the resident pixel-major cube; its candidates are moved to the front of that range, so an
iteration reads them contiguously, once: projection on C^-1 t, new alpha and the term of ``V = sum a_i y_i``
are computed while the spectrum is in registers (the torch path needs two batched products, so two reads).
Pixels that drop to 0 are skipped without reading their spectrum; a group is compacted again (in place,
order kept) when fewer than :data:`.sweeps.REFILL` of its rows are alive. Products and sums are float64; each group
is one parallel task, so results do not depend on the thread count.

Needs numba (a core dependency); :func:`available` says whether it imports.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from hyperplex.geo.methane.jit import numba_or_none, run_kernel

__all__ = ["ColumnCandidates", "available"]


@functools.cache
def _kernels() -> tuple[Any, Any, Any, Any] | None:
    """The compiled sweeps ``(pack, first, step, unpack)`` (cached on disk by numba), or None without numba."""
    if numba_or_none() is None:
        return None
    from hyperplex.geo.methane import sweeps

    return sweeps.pack, sweeps.first, sweeps.step, sweeps.unpack


def available() -> bool:
    """True when numba is installed (the compiled CPU iterations can run)."""
    return _kernels() is not None


class ColumnCandidates:
    """Candidate pixels of a column-grouped Mag1c run, packed inside the resident pixel-major cube (CPU).

    Pixel ``i = w * H + r`` (column-major) starts at row ``i`` of ``rows``; group ``g`` owns rows
    ``lo[g]:hi[g]`` (whole adjacent columns) and keeps its listed candidates in rows ``lo[g]:lo[g] + count[g]``
    with their pixel ids, alpha and R alongside. Packing overwrites ``rows``.

    Args:
        rows: (W * H, C) float32 spectra, shifted (y = x - m), zero where invalid.
        valid: (W, H) bool.
        column_groups: Group of each column (W,), non-decreasing.
        scaling: Fraction of the signal removed before re-estimating statistics.
    """

    def __init__(self, rows: torch.Tensor, valid: torch.Tensor, column_groups: np.ndarray, scaling: float) -> None:
        width, height = valid.shape
        self.shape = (height, width)
        self.rows = rows.numpy()
        self.valid = valid.reshape(-1).numpy()
        n_groups = int(column_groups.max()) + 1 if column_groups.size else 0
        first = np.searchsorted(column_groups, np.arange(n_groups + 1))
        self.columns = first
        self.lo, self.hi = first[:-1] * height, first[1:] * height
        size = width * height
        #: Packed pixel ids, alpha and R (allocated when candidates are packed, see :meth:`_allocate`).
        self.pixel, self.alpha_p, self.ratio_p = np.empty(0, dtype=np.int64), np.empty(0), np.empty(0)
        self.ratio = np.ones(size)
        self.count = np.zeros(n_groups, dtype=np.int64)
        self.alive = self.count
        self.scaling = float(scaling)

    def pack(self, alpha: torch.Tensor, ratio: torch.Tensor) -> None:
        """List the candidates from image-order (H * W) float64 alpha and R (moves their spectra)."""
        height, width = self.shape
        self.ratio = _column_major(ratio, height, width)
        self._allocate()
        start = _column_major(alpha, height, width)
        run_kernel(_kernels()[0], self.rows, self.pixel, self.alpha_p, self.ratio_p, start, self.ratio, self.valid,
                   self.lo, self.hi, self.count)  # fmt: skip
        self.alive = self.count.copy()

    def _allocate(self) -> None:
        """Buffers of the packed candidates' pixel ids, alpha and R."""
        size = self.valid.size
        if self.pixel.size < size:
            self.pixel, self.alpha_p, self.ratio_p = np.empty(size, dtype=np.int64), np.empty(size), np.empty(size)

    def first_pass(
        self, mu_y: torch.Tensor, cit: torch.Tensor, norm: torch.Tensor, unit: torch.Tensor, flags: Any, pack: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mag1c's first estimate for every pixel, listing the candidates on the way when ``pack``.

        Keeps the per-pixel alpha and R (column-major) and :attr:`bounds`, the per-group bound terms (max
        R |y - m| and max R over valid pixels with R > 0).

        Args:
            mu_y: Mean offset (G, C) of the shifted data, float64.
            cit: C^-1 t (G, C), float64.
            norm: t.C^-1 t (G,), float64.
            unit: mean / |mean|^2 (G, C), float64 (R = x.mean / |mean|^2).
            flags: The run's options (``albedo``, ``nonnegative``).
            pack: List the candidates (their spectra move: no later pass may read every pixel).

        Returns:
            The moments ``(A1, A2, V)`` per group.
        """
        size, (n_groups, n_bands) = self.valid.size, cit.shape
        self.alpha, self.ratio = np.empty(size), np.empty(size)
        offsets = torch.stack([(mu_y * cit).sum(-1), (mu_y * unit).sum(-1)], dim=1).numpy()
        if pack:
            self._allocate()
        a1, a2, v = np.zeros(n_groups), np.zeros(n_groups), np.zeros((n_groups, n_bands))
        scaled_max, ratio_max = np.zeros(n_groups), np.zeros(n_groups)
        run_kernel(
            _kernels()[1], self.rows, self.valid, self.lo, self.hi, np.ascontiguousarray(cit.numpy()),
            np.ascontiguousarray(unit.numpy()), offsets, norm.numpy(), bool(flags.albedo),
            bool(flags.nonnegative), self.scaling, bool(pack), self.alpha, self.ratio, self.pixel, self.alpha_p,
            self.ratio_p, self.count, a1, a2, v, scaled_max, ratio_max,
        )  # fmt: skip
        self.alive = self.count.copy()
        self.bounds = (torch.from_numpy(scaled_max), torch.from_numpy(ratio_max))
        return torch.from_numpy(a1), torch.from_numpy(a2), torch.from_numpy(v)

    def images(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-pixel alpha and R in image order (H * W), float64."""
        height, width = self.shape
        return _image_order(self.alpha, height, width), _image_order(self.ratio, height, width)

    def iterate(self, stats: Any, inverse: torch.Tensor, template: np.ndarray, start: tuple,
                num_iter: int) -> tuple[tuple[torch.Tensor, ...], int]:  # fmt: skip
        """All iterations fused per group (:mod:`.fused`), after an unpacked :meth:`first_pass`.

        Args:
            stats: The group statistics (``sum``, ``count``, ``shift``).
            inverse: ``(G / N)^-1`` (G, C, C), float64.
            template: Unit absorption x 1e5 (C,).
            start: The first target t (G, C) and the first-pass moments ``(A1, A2, V)``.
            num_iter: Iterations.

        Returns:
            The last iteration's ``(mean, C^-1 t, normaliser)`` and how many group iterations listed every pixel
            again; the per-pixel alpha is updated (see :meth:`images`).
        """
        from hyperplex.geo.methane.fused import iterate

        t0, (a1, a2, v) = start
        n_groups, n_bands = t0.shape
        mean, cit, norm = np.empty((n_groups, n_bands)), np.empty((n_groups, n_bands)), np.empty(n_groups)
        relisted = np.zeros(n_groups, dtype=np.int64)
        f64 = [np.ascontiguousarray(x.numpy()) for x in (inverse, stats.sum, stats.count, stats.shift, t0, a1, a2, v,
                                                         *self.bounds)]  # fmt: skip
        run_kernel(iterate, self.rows, self.valid, self.lo, self.hi, self.alpha, self.ratio, *f64[:4],
                   np.ascontiguousarray(template, dtype=np.float64), *f64[4:], int(num_iter), self.scaling, mean,
                   cit, norm, relisted)  # fmt: skip
        final = (torch.from_numpy(mean), torch.from_numpy(cit), torch.from_numpy(norm))
        return final, int(relisted.sum())

    def step(
        self, mu_y: torch.Tensor, cit: torch.Tensor, norm: torch.Tensor, full: np.ndarray | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One iteration: new alpha of the listed candidates and the moments ``(A1, A2, V)`` per group.

        Args:
            mu_y: Mean offset (G, C), float64.
            cit: C^-1 t (G, C), float64.
            norm: Normaliser (G,), float64.
            full: (G,) bool: groups whose listed rows must all be evaluated, at alpha = 0 too (after
                :meth:`restore`).
        """
        n_groups, n_bands = cit.shape
        a1, a2 = np.zeros(n_groups), np.zeros(n_groups)
        v = np.zeros((n_groups, n_bands))
        full = np.zeros(n_groups, dtype=bool) if full is None else full
        offset = (mu_y * cit).sum(-1).numpy()
        run_kernel(
            _kernels()[2], self.rows, self.pixel, self.alpha_p, self.ratio_p, self.lo, self.count, self.alive, full,
            np.ascontiguousarray(cit.numpy()), offset, norm.numpy(), self.scaling, a1, a2, v,
        )  # fmt: skip
        return torch.from_numpy(a1), torch.from_numpy(a2), torch.from_numpy(v)

    def alpha_image(self) -> torch.Tensor:
        """Alpha in image order (H * W), float64 (0 for every pixel not listed)."""
        height, width = self.shape
        alpha = np.zeros(width * height)
        run_kernel(_kernels()[3], self.pixel, self.alpha_p, self.lo, self.count, alpha)
        return _image_order(alpha, height, width)

    def restore(self, group: int, spectra: np.ndarray, pixels: np.ndarray, alpha: np.ndarray) -> None:
        """List every valid pixel of ``group`` again (when pixels at 0 are no longer certified to stay there).

        Args:
            group: The group.
            spectra: (n, C) float32 shifted spectra of its valid pixels.
            pixels: Their column-major pixel ids, increasing.
            alpha: Their current alpha.
        """
        lo = self.lo[group]
        n = pixels.size
        self.rows[lo : lo + n] = spectra
        self.pixel[lo : lo + n] = pixels
        self.alpha_p[lo : lo + n] = alpha
        self.ratio_p[lo : lo + n] = self.ratio[pixels]
        self.count[group] = self.alive[group] = n


def _column_major(image: torch.Tensor, height: int, width: int) -> np.ndarray:
    """An image-order (H * W) tensor as a column-major (W * H) numpy array."""
    return image.view(height, width).T.contiguous().view(-1).numpy()


def _image_order(values: np.ndarray, height: int, width: int) -> torch.Tensor:
    """A column-major (W * H) array as an image-order (H * W) tensor."""
    return torch.from_numpy(values).view(width, height).T.contiguous().view(-1)
