"""Mag1c-SAS (zaitra onboard benchmark): tile statistics from a strided sample, cheap sparsity on all pixels.

1. Per tile, a regular lattice of pixels (every ``s``-th row and column, ``s = round(1/sqrt(sample))``, so
   about ``sample`` of the pixels) goes through the full Mag1c (``num_iter`` iterations); its last
   iteration's mean mu, C^-1 t and normaliser n are kept.
2. Every pixel: R = x.mu / mu.mu, alpha0 = relu((x - mu).C^-1 t / (R n)), then ``apply_iter`` times
   alpha = relu(alpha0 - 1 / (R (alpha + 1e-9)) / (R n)). Output 1e5 * alpha in ppm·m.

Differences from Mag1c: statistics per tile (default the whole cube) instead of per column, from the sample
only, and no per-iteration statistics on all pixels. ``stats_mask`` pixels are left out of the sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from hyperplex.common.errors import InvalidParameterError
from hyperplex.geo.methane.grouping import Grouping
from hyperplex.geo.methane.inputs import FILL_VALUE, PreparedCube
from hyperplex.geo.methane.mag1c_filter import EPSILON, Mag1cSettings, run_mag1c
from hyperplex.geo.methane.options import DEFAULT_WINDOW, FilterOptions, Window
from hyperplex.geo.methane.provenance import records_method
from hyperplex.geo.methane.runner import Setup, apply_functionals, setup, wrap
from hyperplex.geo.methane.target import TARGET_SCALING

__all__ = ["mag1c_sas"]


@records_method("mag1c_sas")
def mag1c_sas(
    cube: Any,
    wavelengths: Any = None,
    fwhm: Any = None,
    *,
    channel_axis: int = 0,
    mask: Any = None,
    stats_mask: Any = None,
    window: Window = DEFAULT_WINDOW,
    bands: Sequence[int] | None = None,
    sample: float = 0.01,
    num_iter: int = 30,
    apply_iter: int = 3,
    albedo: bool = True,
    shrinkage: float = 0.0,
    tile_size: int | None = None,
    fill_value: float | None = FILL_VALUE,
    device: str | torch.device | None = None,
    return_albedo: bool = False,
) -> Any:
    """Mag1c-SAS CH4 enhancement (ppm·m): tile-wise, sampled statistics, few reweighting steps.

    The shared options (``channel_axis`` to ``device``) are those of
    :class:`~hyperplex.geo.methane.options.FilterOptions`.

    Args:
        cube: Radiance, 3-D (numpy, memmap, dask, zarr or an xarray DataArray with a band dimension).
        wavelengths: Band centres, nm (from the DataArray's coordinates when None).
        fwhm: Band FWHM, nm.
        sample: Fraction of pixels used for the statistics (a regular lattice; at least 4 x bands pixels per
            tile where the tile has them).
        num_iter: Mag1c iterations on the sample.
        apply_iter: Reweighting steps on all pixels with the statistics frozen.
        albedo: Apply the albedo factor.
        shrinkage: Covariance shrinkage towards its diagonal.
        return_albedo: Also return the albedo factor R.
        channel_axis: Axis of ``cube`` holding bands.
        mask: (H, W) bool, True = excluded from the statistics and the output (NaN).
        stats_mask: (H, W) bool, True = excluded from the statistics only (still filtered), e.g. known plumes.
        window: Wavelength range of the bands used (nm); None = all bands.
        bands: Explicit band indices (overrides ``window``), e.g. from :func:`select_bands`.
        tile_size: Tile edge in pixels (statistics are always per tile); None = the whole cube is one tile.
        fill_value: Value marking missing data.
        device: Torch device; None = CUDA when available, else CPU.

    Returns:
        (H, W) float32 enhancement in ppm·m (NaN where invalid), or ``(enhancement, albedo)``.

    Raises:
        ChannelMismatchError: If the band count differs from ``wavelengths``.
        InvalidParameterError: For bad parameters or too few bands in the window.
        NoValidDataError: If no pixel is valid.
    """
    if not 0.0 < float(sample) <= 1.0 or int(num_iter) < 0 or int(apply_iter) < 0:
        raise InvalidParameterError("`sample` must be in (0, 1]; `num_iter` and `apply_iter` >= 0.")
    settings = Mag1cSettings(num_iter=int(num_iter), albedo=albedo, shrinkage=float(shrinkage), what="mag1c_sas")
    options = FilterOptions(channel_axis=channel_axis, mask=mask, stats_mask=stats_mask, window=window, bands=bands,
                            fill_value=fill_value, group="tile", tile_size=tile_size, device=device)  # fmt: skip
    run = setup(cube, wavelengths, fwhm, options)
    final = run_mag1c(_sample_setup(run, float(sample)), settings).final  # numpy from the compiled engine
    mean, cit, norm = (torch.as_tensor(v, device=run.device) for v in final)
    enhancement, factor = _apply(run, mean, cit, norm, int(apply_iter), albedo, return_albedo)
    out = wrap(run, enhancement, "ch4_enhancement", "ppm·m")
    return (out, wrap(run, factor, "albedo_factor", "1")) if return_albedo else out


def _stride(run: Setup, sample: float) -> int:
    """Lattice step giving about ``sample`` of the pixels and at least 4 x bands per tile when possible."""
    th, tw = run.grouping.tile_shape
    step = max(1, round(1.0 / np.sqrt(sample)))
    while step > 1 and -(-th // step) * -(-tw // step) < 4 * run.prepared.n_bands:
        step -= 1
    return step


def _sample_setup(run: Setup, sample: float) -> Setup:
    """The lattice sample arranged as a (C, n, tiles) cube: one column of samples per tile (zero padded)."""
    step = _stride(run, sample)
    height, width = run.prepared.shape
    rows, cols = np.arange(step // 2, height, step), np.arange(step // 2, width, step)
    lattice = np.empty((run.prepared.n_bands, rows.size, cols.size), dtype=np.float32)
    for i, r in enumerate(rows):
        lattice[:, i] = run.prepared.read(int(r), int(r) + 1)[:, 0, cols]
    for excluded in (run.prepared.mask, run.prepared.stats_mask):
        if excluded is not None:
            lattice[:, excluded[np.ix_(rows, cols)]] = np.nan
    groups = run.grouping.group_map()[np.ix_(rows, cols)].ravel()
    flat = lattice.reshape(lattice.shape[0], -1)
    order = np.argsort(groups, kind="stable")
    counts = np.bincount(groups, minlength=run.grouping.n_groups)
    cube = np.zeros((lattice.shape[0], max(int(counts.max()), 1), run.grouping.n_groups), dtype=np.float32)
    slot = np.arange(groups.size) - (np.cumsum(counts) - counts)[groups[order]]
    cube[:, slot, groups[order]] = flat[:, order]
    p = run.prepared
    prepared = PreparedCube(cube, slice(None), p.wavelengths, p.fwhm, p.template, mask=None, fill_value=p.fill_value)
    return Setup(prepared, Grouping.create("column", prepared.shape), run.device)


def _apply(
    run: Setup, mean: torch.Tensor, cit: torch.Tensor, norm: torch.Tensor, steps: int, albedo: bool, want_ratio: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Frozen-statistics reweighting on every pixel; the albedo factor image too when ``want_ratio``."""
    weights = torch.stack([mean / (mean * mean).sum(-1, keepdim=True), cit], dim=2)

    def ratio_of(values: torch.Tensor) -> torch.Tensor:
        return 1.0 + values[..., 0] if albedo else torch.ones_like(values[..., 0])

    def finish(values: torch.Tensor, gid: torch.Tensor) -> torch.Tensor:
        values = values.to(torch.float64)
        ratio = ratio_of(values)
        scale = ratio * norm[gid][:, None]
        alpha0 = (values[..., 1] / scale).clamp(min=0)
        alpha = alpha0
        for _ in range(steps):
            alpha = (alpha0 - 1.0 / (ratio * (alpha + EPSILON)) / scale).clamp(min=0)
        return alpha * TARGET_SCALING

    enhancement = apply_functionals(run, mean, weights, finish)
    factor = apply_functionals(run, mean, weights, lambda v, g: ratio_of(v)) if want_ratio else None
    return enhancement, factor
