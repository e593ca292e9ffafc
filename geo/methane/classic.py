"""Classic detectors: the matched filter (EMIT-style, column-wise by default), CEM and ACE.

Definitions follow the onboard benchmark (zaitra/methane-filters-benchmark): with the per-group mean u,
covariance C (ddof 1), correlation R = E[x x^T] and the unit CH4 absorption t,

* MF:  y = (x - u)^T C^-1 t_c / (t_c^T C^-1 t_c), t_c = t * u (multiplicative) or t - u (additive);
  the multiplicative MF is an enhancement estimate and is returned in ppm·m (x 1e5).
* CEM: y = x^T R^-1 t_c / (t_c^T R^-1 t_c), t_c = t * u (the unit absorption times the group mean, as the
  multiplicative MF), so the score does not depend on the radiance units.
* ACE: y = (t_c^T C^-1 (x - u))^2 / ((t_c^T C^-1 t_c) ((x - u)^T C^-1 (x - u))).

The statistics (u, C, R) come from the valid pixels outside ``mask`` and ``stats_mask``; every valid pixel
outside ``mask`` is filtered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from hyperplex.common.errors import InvalidParameterError
from hyperplex.geo.methane.inputs import FILL_VALUE
from hyperplex.geo.methane.linalg import group_shrinkage, solve
from hyperplex.geo.methane.options import DEFAULT_WINDOW, FilterOptions, Window
from hyperplex.geo.methane.provenance import records_method
from hyperplex.geo.methane.runner import Setup, apply_functionals, setup, wrap
from hyperplex.geo.methane.stats import GroupStats, accumulate
from hyperplex.geo.methane.stats_capture import publish_column_stats, wants_column_stats
from hyperplex.geo.methane.target import TARGET_SCALING

__all__ = ["TARGETS", "ace", "cem", "matched_filter", "matched_filter_image"]

#: Values of ``target=``: how the unit absorption becomes the target of a group with mean u.
TARGETS = ("multiplicative", "additive")


@records_method("matched_filter")
def matched_filter(
    cube: Any,
    wavelengths: Any = None,
    fwhm: Any = None,
    *,
    channel_axis: int = 0,
    mask: Any = None,
    stats_mask: Any = None,
    window: Window = DEFAULT_WINDOW,
    bands: Sequence[int] | None = None,
    target: str = "multiplicative",
    shrinkage: float = 0.0,
    group: str = "column",
    group_columns: int = 1,
    tile_size: int | None = None,
    fill_value: float | None = FILL_VALUE,
    device: str | torch.device | None = None,
) -> Any:
    """Classic matched filter (no iterations, no albedo factor), like EMIT's operational CH4 product.

    The shared options (``channel_axis`` to ``device``) are those of
    :class:`~hyperplex.geo.methane.options.FilterOptions`.

    Args:
        cube: Radiance, 3-D (numpy, memmap, dask, zarr or an xarray DataArray with a band dimension).
        wavelengths: Band centres, nm (from the DataArray's coordinates when None).
        fwhm: Band FWHM, nm (from the DataArray's coordinates when None).
        target: 'multiplicative' (t * mean, result in ppm·m) or 'additive' (t - mean, a unitless score).
        shrinkage: Covariance shrinkage towards its diagonal, in [0, 1].
        channel_axis: Axis of ``cube`` holding bands.
        mask: (H, W) bool, True = excluded from the statistics and the output (NaN).
        stats_mask: (H, W) bool, True = excluded from the statistics only (still filtered), e.g. known plumes.
        window: Wavelength range of the bands used (nm); None = all bands.
        bands: Explicit band indices (overrides ``window``), e.g. from :func:`select_bands`.
        group: 'column' (statistics per ``group_columns`` adjacent detector columns) or 'tile'.
        group_columns: Adjacent columns per group (column mode).
        tile_size: Tile edge in pixels (tile mode); None = the whole cube is one tile.
        fill_value: Value marking missing data.
        device: Torch device; None = CUDA when available, else CPU.

    Returns:
        (H, W) float32 (or a DataArray for xarray input); NaN at invalid pixels.

    Raises:
        ChannelMismatchError: If the band count differs from ``wavelengths``.
        InvalidParameterError: For bad parameters or too few bands in the window.
        NoValidDataError: If no pixel is valid.
    """
    _check_target(target)
    options = FilterOptions(channel_axis=channel_axis, mask=mask, stats_mask=stats_mask, window=window, bands=bands,
                            fill_value=fill_value, group=group, group_columns=group_columns, tile_size=tile_size,
                            device=device)  # fmt: skip
    run = setup(cube, wavelengths, fwhm, options)
    image = matched_filter_image(run, target, shrinkage)
    if target == "multiplicative":
        return wrap(run, image, "ch4_enhancement", "ppm·m")
    return wrap(run, image, "mf_score", "1")


def matched_filter_image(
    run: Setup, target: str = "multiplicative", shrinkage: float = 0.0, albedo: bool = False
) -> np.ndarray:
    """The matched filter of a prepared cube as an (H, W) float32 image (NaN where invalid).

    Args:
        run: The prepared cube, grouping and device (:func:`hyperplex.geo.methane.runner.setup`).
        target: One of :data:`TARGETS`.
        shrinkage: Covariance shrinkage towards its diagonal, in [0, 1].
        albedo: Divide each pixel's estimate by its albedo factor R = x.u / u.u: the albedo-corrected matched
            filter, i.e. Mag1c's first estimate without clipping (Foote et al. 2020).

    Returns:
        The image: ppm·m for the multiplicative target, else a unitless score.
    """
    stats, t, cit, _ = _whitened_target(run, target, shrinkage, "matched_filter")
    mean = stats.mean
    scale = TARGET_SCALING if target == "multiplicative" else 1.0
    weights = cit / (t * cit).sum(-1, keepdim=True) * scale
    if not albedo:
        return apply_functionals(run, mean, weights[:, :, None], lambda v, g: v[..., 0])
    unit = mean / (mean * mean).sum(-1, keepdim=True)  # (x - u) . unit = R - 1
    functionals = torch.stack([weights, unit], dim=2)
    return apply_functionals(run, mean, functionals, lambda v, g: v[..., 0] / (1.0 + v[..., 1]))


@records_method("cem")
def cem(
    cube: Any,
    wavelengths: Any = None,
    fwhm: Any = None,
    *,
    channel_axis: int = 0,
    mask: Any = None,
    stats_mask: Any = None,
    window: Window = DEFAULT_WINDOW,
    bands: Sequence[int] | None = None,
    shrinkage: float = 0.0,
    group: str = "tile",
    group_columns: int = 1,
    tile_size: int | None = None,
    fill_value: float | None = FILL_VALUE,
    device: str | torch.device | None = None,
) -> Any:
    """Constrained energy minimisation with the correlation matrix (no mean removal).

    The shared options (``channel_axis`` to ``device``) are those of
    :class:`~hyperplex.geo.methane.options.FilterOptions`.

    Args:
        cube: Radiance, 3-D (see :func:`matched_filter`).
        wavelengths: Band centres, nm.
        fwhm: Band FWHM, nm.
        shrinkage: Shrinkage of the correlation matrix towards its diagonal.
        channel_axis: Axis of ``cube`` holding bands.
        mask: (H, W) bool, True = excluded from the statistics and the output (NaN).
        stats_mask: (H, W) bool, True = excluded from the statistics only (still filtered), e.g. known plumes.
        window: Wavelength range of the bands used (nm); None = all bands.
        bands: Explicit band indices (overrides ``window``), e.g. from :func:`select_bands`.
        group: 'tile' (default, as in the onboard benchmark) or 'column' (per ``group_columns`` columns).
        group_columns: Adjacent columns per group (column mode).
        tile_size: Tile edge in pixels (tile mode); None = the whole cube is one tile.
        fill_value: Value marking missing data.
        device: Torch device; None = CUDA when available, else CPU.

    The target is the unit CH4 absorption times the group's mean radiance (``t_c = t * u``, as the
    multiplicative matched filter), so the score is unit-free: multiplying the radiance by a constant c
    scales R by c^2 and t_c by c and leaves the score unchanged. (Before, the target was the unit
    absorption alone and the score scaled with the radiance units.) A pixel with an enhancement of
    a ppm·m raises its score by about ``a / 1e5`` (:data:`~hyperplex.geo.methane.target.TARGET_SCALING`)
    times its albedo relative to the mean; there is no mean removal, so background pixels do not score 0.

    Returns:
        (H, W) float32 unit-free CEM score; NaN where invalid.
    """
    options = FilterOptions(channel_axis=channel_axis, mask=mask, stats_mask=stats_mask, window=window, bands=bands,
                            fill_value=fill_value, group=group, group_columns=group_columns, tile_size=tile_size,
                            device=device)  # fmt: skip
    run = setup(cube, wavelengths, fwhm, options)
    stats = _group_statistics(run)
    t = run.template * stats.mean  # (groups, bands): unit absorption times the group mean
    rit, _ = _solve(run, stats, stats.correlation(), t, shrinkage, "cem")
    weights = rit / (t * rit).sum(-1, keepdim=True)
    zeros = torch.zeros_like(stats.mean)
    image = apply_functionals(run, zeros, weights[:, :, None], lambda v, g: v[..., 0])
    return wrap(run, image, "cem_score", "1")


@records_method("ace")
def ace(
    cube: Any,
    wavelengths: Any = None,
    fwhm: Any = None,
    *,
    channel_axis: int = 0,
    mask: Any = None,
    stats_mask: Any = None,
    window: Window = DEFAULT_WINDOW,
    bands: Sequence[int] | None = None,
    target: str = "multiplicative",
    shrinkage: float = 0.0,
    group: str = "tile",
    group_columns: int = 1,
    tile_size: int | None = None,
    fill_value: float | None = FILL_VALUE,
    device: str | torch.device | None = None,
) -> Any:
    """Adaptive cosine estimator: squared cosine between the whitened pixel and the whitened target.

    The shared options (``channel_axis`` to ``device``) are those of
    :class:`~hyperplex.geo.methane.options.FilterOptions`.

    Args:
        cube: Radiance, 3-D (see :func:`matched_filter`).
        wavelengths: Band centres, nm.
        fwhm: Band FWHM, nm.
        target: 'multiplicative' (t * mean) or 'additive' (t - mean).
        shrinkage: Covariance shrinkage towards its diagonal.
        channel_axis: Axis of ``cube`` holding bands.
        mask: (H, W) bool, True = excluded from the statistics and the output (NaN).
        stats_mask: (H, W) bool, True = excluded from the statistics only (still filtered), e.g. known plumes.
        window: Wavelength range of the bands used (nm); None = all bands.
        bands: Explicit band indices (overrides ``window``), e.g. from :func:`select_bands`.
        group: 'tile' (default, as in the onboard benchmark) or 'column' (per ``group_columns`` columns).
        group_columns: Adjacent columns per group (column mode).
        tile_size: Tile edge in pixels (tile mode); None = the whole cube is one tile.
        fill_value: Value marking missing data.
        device: Torch device; None = CUDA when available, else CPU.

    Returns:
        (H, W) float32 ACE score in [0, 1]; NaN where invalid.
    """
    _check_target(target)
    options = FilterOptions(channel_axis=channel_axis, mask=mask, stats_mask=stats_mask, window=window, bands=bands,
                            fill_value=fill_value, group=group, group_columns=group_columns, tile_size=tile_size,
                            device=device)  # fmt: skip
    run = setup(cube, wavelengths, fwhm, options)
    stats, t, cit, factor = _whitened_target(run, target, shrinkage, "ace")
    norm = (t * cit).sum(-1)
    eye = torch.eye(factor.shape[-1], dtype=factor.dtype, device=factor.device).expand_as(factor)
    whiten = torch.linalg.solve_triangular(factor, eye, upper=False).transpose(1, 2)  # L^-T
    weights = torch.cat([cit[:, :, None] / norm.sqrt()[:, None, None], whiten], dim=2)

    def finish(values: torch.Tensor, gid: torch.Tensor) -> torch.Tensor:
        distance = values[..., 1:].square().sum(-1)
        return values[..., 0].square() / distance.clamp(min=torch.finfo(values.dtype).tiny)

    image = apply_functionals(run, stats.mean, weights, finish)
    return wrap(run, image, "ace_score", "1")


def _check_target(target: str) -> None:
    if target not in TARGETS:
        raise InvalidParameterError(f"`target` must be 'multiplicative' or 'additive'; got {target!r}.")


def _whitened_target(
    run: Setup, target: str, shrinkage: float, what: str
) -> tuple[GroupStats, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Group statistics, target t_c, C^-1 t_c and the Cholesky factor of C (ddof 1), per group."""
    _check_target(target)
    stats = _group_statistics(run)
    mean = stats.mean
    t = run.template * mean if target == "multiplicative" else run.template - mean
    cit, factor = _solve(run, stats, stats.covariance(ddof=1), t, shrinkage, what)
    return stats, t, cit, factor


def _group_statistics(run: Setup) -> GroupStats:
    """The run's group statistics (one pass), published for the pipeline's plume-free filter when per column.

    (:func:`~hyperplex.geo.methane.stats_capture.publish_column_stats`: inside a capture, the detection
    pipeline downdates them by the plume pixels instead of a second pass over the cube.)
    """
    if not wants_column_stats(run.grouping):
        return accumulate(run.prepared, run.grouping, run.device)
    valid = np.zeros(run.prepared.shape, dtype=bool)
    stats = accumulate(run.prepared, run.grouping, run.device, valid_out=valid)
    pixels = valid if run.prepared.stats_mask is None else valid & ~np.asarray(run.prepared.stats_mask, dtype=bool)
    publish_column_stats(stats, pixels.T, run.prepared, run.grouping)
    return stats


def _solve(
    run: Setup, stats: GroupStats, matrix: torch.Tensor, rhs: torch.Tensor, shrinkage: float, what: str
) -> tuple[torch.Tensor, torch.Tensor]:
    if not 0.0 <= float(shrinkage) <= 1.0:
        raise InvalidParameterError(f"`shrinkage` must be in [0, 1]; got {shrinkage}.")
    alpha = group_shrinkage(stats.count, run.prepared.n_bands, float(shrinkage), what)
    return solve(matrix, rhs, alpha, what, stats.count)
