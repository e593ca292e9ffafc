"""The public Mag1c filter and the choice of its engine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hyperplex.common.errors import InvalidParameterError
from hyperplex.geo.methane.inputs import FILL_VALUE
from hyperplex.geo.methane.mag1c_filter.compiled_engine import CompiledEngine, kernels
from hyperplex.geo.methane.mag1c_filter.engine import Mag1cEngine, Mag1cResult
from hyperplex.geo.methane.mag1c_filter.jit import preload
from hyperplex.geo.methane.mag1c_filter.settings import ENGINES, Mag1cSettings
from hyperplex.geo.methane.options import DEFAULT_WINDOW, FilterOptions, Window
from hyperplex.geo.methane.provenance import records_method
from hyperplex.geo.methane.run_setup import Setup, setup, wrap

if TYPE_CHECKING:
    import torch

__all__ = ["mag1c", "preload_kernels", "run_mag1c", "select_engine"]


@records_method("mag1c")
def mag1c(
    cube: Any,
    wavelengths: Any = None,
    fwhm: Any = None,
    *,
    channel_axis: int = 0,
    mask: Any = None,
    stats_mask: Any = None,
    window: Window = DEFAULT_WINDOW,
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
    """Mag1c CH4 enhancement (ppm·m), column-wise by default.

    The shared options (``channel_axis`` to ``device``) are those of
    :class:`~hyperplex.geo.methane.options.FilterOptions`.

    Args:
        cube: Radiance, 3-D (numpy, memmap, dask, zarr or an xarray DataArray with a band dimension).
            Lazy arrays are read chunk by chunk (the selected bands only).
        wavelengths: Band centres, nm (from the DataArray's coordinates when None).
        fwhm: Band FWHM, nm.
        num_iter: Reweighted-L1 iterations (mag1c ``--iter``).
        albedo: Apply the albedo factor R (mag1c ``--noalbedo`` = False).
        nonnegative: Clip the initial estimate at 0 (mag1c ``--nonnegativeoff`` = False); iterations always clip.
        sparsity: Use the reweighted-L1 weights (mag1c ``--no-sparsity`` = False).
        covariance_update_scaling: Fraction of the detected signal removed before re-estimating statistics.
        shrinkage: Covariance shrinkage towards its diagonal (mag1c ``--covariance-lerp-alpha``).
        return_albedo: Also return the albedo factor R.
        engine: 'auto': column-wise runs on the CPU use the compiled engine (numba kernels); 'torch': torch
            operations only (what runs on a GPU and for tiles).
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
        (H, W) float32 enhancement in ppm·m (NaN where invalid), or ``(enhancement, albedo)``; DataArrays
        for xarray input.

    Raises:
        ChannelMismatchError: If the band count differs from ``wavelengths``.
        InvalidParameterError: For bad parameters or too few bands in the window.
        NoValidDataError: If no pixel is valid.
    """
    settings = Mag1cSettings(num_iter=int(num_iter), albedo=albedo, nonnegative=nonnegative, sparsity=sparsity,
                             update_scaling=float(covariance_update_scaling), shrinkage=float(shrinkage))  # fmt: skip
    _check_engine(engine)
    if engine == "auto" and group == "column":
        preload_kernels()  # loads the compiled kernels while the inputs are prepared
    options = FilterOptions(channel_axis=channel_axis, mask=mask, stats_mask=stats_mask, window=window, bands=bands,
                            fill_value=fill_value, group=group, group_columns=group_columns, tile_size=tile_size,
                            device=device)  # fmt: skip
    run = setup(cube, wavelengths, fwhm, options)
    result = run_mag1c(run, settings, engine)
    out = wrap(run, result.enhancement, "ch4_enhancement", "ppm·m")
    return (out, wrap(run, result.albedo, "albedo_factor", "1")) if return_albedo else out


def preload_kernels() -> None:
    """Start loading the compiled engine's cached kernels in a background thread (once per process).

    :func:`mag1c` does this itself; the detection pipeline calls it before reading a scene, so that the
    load runs while the file is read.
    """
    preload(kernels)


def run_mag1c(run: Setup, settings: Mag1cSettings, engine: str = "auto") -> Mag1cResult:
    """Mag1c on prepared inputs (:func:`hyperplex.geo.methane.runner.setup`) with the chosen engine."""
    return select_engine(engine, run, settings).run(run, settings)


def select_engine(engine: str, run: Setup, settings: Mag1cSettings) -> Mag1cEngine:
    """The engine for ``engine`` (one of :data:`ENGINES`): 'auto' = compiled where it applies, else torch."""
    _check_engine(engine)
    if engine == "auto" and CompiledEngine.supports(run, settings):
        return CompiledEngine()
    from hyperplex.geo.methane.mag1c_filter.torch_engine import TorchEngine

    return TorchEngine()


def _check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise InvalidParameterError(f"`engine` must be one of {ENGINES}, got {engine!r}.")
