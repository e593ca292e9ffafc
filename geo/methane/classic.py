"""Classic detectors: the matched filter (EMIT-style, column-wise by default), CEM and ACE.

Definitions follow the onboard benchmark (zaitra/methane-filters-benchmark): with the per-group mean u,
covariance C (ddof 1), correlation R = E[x x^T] and the unit CH4 absorption t,

* MF:  y = (x - u)^T C^-1 t_c / (t_c^T C^-1 t_c), t_c = t * u (multiplicative) or t - u (additive);
  the multiplicative MF is an enhancement estimate and is returned in ppm*m (x 1e5).
* CEM: y = x^T R^-1 t / (t^T R^-1 t).
* ACE: y = (t_c^T C^-1 (x - u))^2 / ((t_c^T C^-1 t_c) ((x - u)^T C^-1 (x - u))).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from hyperplex.common.errors import InvalidParameterError
from hyperplex.geo.methane.inputs import FILL_VALUE
from hyperplex.geo.methane.linalg import group_shrinkage, solve
from hyperplex.geo.methane.runner import Setup, apply_functionals, setup, wrap
from hyperplex.geo.methane.stats import GroupStats, accumulate
from hyperplex.geo.methane.target import TARGET_SCALING

__all__ = ["ace", "cem", "matched_filter"]

Window = tuple[float, float] | None


def matched_filter(
    cube: Any,
    wavelengths: Any = None,
    fwhm: Any = None,
    *,
    channel_axis: int = 0,
    mask: Any = None,
    window: Window = (2122.0, 2488.0),
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

    Args:
        cube: Radiance, 3-D (numpy, memmap, dask, zarr or an xarray DataArray with a band dimension).
        wavelengths: Band centres, nm (from the DataArray's coordinates when None).
        fwhm: Band FWHM, nm (from the DataArray's coordinates when None).
        channel_axis: Axis of ``cube`` holding bands.
        mask: (H, W) bool, True = pixel excluded from statistics and output (NaN).
        window: Wavelength range of the bands used (nm); None = all bands.
        bands: Explicit band indices (overrides ``window``), e.g. from :func:`select_bands`.
        target: 'multiplicative' (t * mean, result in ppm*m) or 'additive' (t - mean, a unitless score).
        shrinkage: Covariance shrinkage towards its diagonal, in [0, 1].
        group: 'column' (statistics per detector column) or 'tile'.
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
    if target not in ("multiplicative", "additive"):
        raise InvalidParameterError(f"`target` must be 'multiplicative' or 'additive'; got {target!r}.")
    run = setup(cube, wavelengths, fwhm, _options(locals()))
    stats = accumulate(run.prepared, run.grouping, run.device)
    mean = stats.mean
    t = run.template * mean if target == "multiplicative" else run.template - mean
    cit, _ = _solve(run, stats, stats.covariance(ddof=1), t, shrinkage, "matched_filter")
    scale = TARGET_SCALING if target == "multiplicative" else 1.0
    weights = cit / (t * cit).sum(-1, keepdim=True) * scale
    image = apply_functionals(run, mean, weights[:, :, None], lambda v, g: v[..., 0])
    return wrap(
        run,
        image,
        "ch4_enhancement" if target == "multiplicative" else "mf_score",
        "ppm m" if target == "multiplicative" else "1",
    )


def cem(
    cube: Any,
    wavelengths: Any = None,
    fwhm: Any = None,
    *,
    channel_axis: int = 0,
    mask: Any = None,
    window: Window = (2122.0, 2488.0),
    bands: Sequence[int] | None = None,
    shrinkage: float = 0.0,
    group: str = "tile",
    group_columns: int = 1,
    tile_size: int | None = None,
    fill_value: float | None = FILL_VALUE,
    device: str | torch.device | None = None,
) -> Any:
    """Constrained energy minimisation with the correlation matrix (no mean removal).

    Args:
        cube: Radiance, 3-D (see :func:`matched_filter`).
        wavelengths: Band centres, nm.
        fwhm: Band FWHM, nm.
        channel_axis: Axis of ``cube`` holding bands.
        mask: (H, W) bool, True = excluded.
        window: Wavelength range of the bands used (nm).
        bands: Explicit band indices (overrides ``window``).
        shrinkage: Shrinkage of the correlation matrix towards its diagonal.
        group: 'tile' (default, as in the onboard benchmark) or 'column'.
        group_columns: Adjacent columns per group (column mode).
        tile_size: Tile edge (tile mode); None = whole cube.
        fill_value: Value marking missing data.
        device: Torch device.

    Returns:
        (H, W) float32 CEM score (1 = the target's absorption depth as modelled); NaN where invalid.
    """
    run = setup(cube, wavelengths, fwhm, _options(locals()))
    stats = accumulate(run.prepared, run.grouping, run.device)
    t = run.template.expand(run.grouping.n_groups, -1)
    rit, _ = _solve(run, stats, stats.correlation(), t, shrinkage, "cem")
    weights = rit / (t * rit).sum(-1, keepdim=True)
    zeros = torch.zeros_like(stats.mean)
    image = apply_functionals(run, zeros, weights[:, :, None], lambda v, g: v[..., 0])
    return wrap(run, image, "cem_score", "1")


def ace(
    cube: Any,
    wavelengths: Any = None,
    fwhm: Any = None,
    *,
    channel_axis: int = 0,
    mask: Any = None,
    window: Window = (2122.0, 2488.0),
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

    Args:
        cube: Radiance, 3-D (see :func:`matched_filter`).
        wavelengths: Band centres, nm.
        fwhm: Band FWHM, nm.
        channel_axis: Axis of ``cube`` holding bands.
        mask: (H, W) bool, True = excluded.
        window: Wavelength range of the bands used (nm).
        bands: Explicit band indices (overrides ``window``).
        target: 'multiplicative' (t * mean) or 'additive' (t - mean).
        shrinkage: Covariance shrinkage towards its diagonal.
        group: 'tile' (default) or 'column'.
        group_columns: Adjacent columns per group (column mode).
        tile_size: Tile edge (tile mode); None = whole cube.
        fill_value: Value marking missing data.
        device: Torch device.

    Returns:
        (H, W) float32 ACE score in [0, 1]; NaN where invalid.
    """
    if target not in ("multiplicative", "additive"):
        raise InvalidParameterError(f"`target` must be 'multiplicative' or 'additive'; got {target!r}.")
    run = setup(cube, wavelengths, fwhm, _options(locals()))
    stats = accumulate(run.prepared, run.grouping, run.device)
    mean = stats.mean
    t = run.template * mean if target == "multiplicative" else run.template - mean
    cit, factor = _solve(run, stats, stats.covariance(ddof=1), t, shrinkage, "ace")
    norm = (t * cit).sum(-1)
    eye = torch.eye(factor.shape[-1], dtype=factor.dtype, device=factor.device).expand_as(factor)
    whiten = torch.linalg.solve_triangular(factor, eye, upper=False).transpose(1, 2)  # L^-T
    weights = torch.cat([cit[:, :, None] / norm.sqrt()[:, None, None], whiten], dim=2)

    def finish(values: torch.Tensor, gid: torch.Tensor) -> torch.Tensor:
        distance = values[..., 1:].square().sum(-1)
        return values[..., 0].square() / distance.clamp(min=torch.finfo(values.dtype).tiny)

    image = apply_functionals(run, mean, weights, finish)
    return wrap(run, image, "ace_score", "1")


def _solve(
    run: Setup, stats: GroupStats, matrix: torch.Tensor, rhs: torch.Tensor, shrinkage: float, what: str
) -> tuple[torch.Tensor, torch.Tensor]:
    if not 0.0 <= float(shrinkage) <= 1.0:
        raise InvalidParameterError(f"`shrinkage` must be in [0, 1]; got {shrinkage}.")
    alpha = group_shrinkage(stats.count, run.prepared.n_bands, float(shrinkage), what)
    return solve(matrix, rhs, alpha, what, stats.count)


def _options(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: values[k]
        for k in (
            "channel_axis",
            "mask",
            "window",
            "bands",
            "fill_value",
            "group",
            "group_columns",
            "tile_size",
            "device",
        )
    }
