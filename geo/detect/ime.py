"""Unbiased per-pixel enhancement for mass estimates (integrated mass enhancement, IME).

Detection maps are biased for mass: Mag1c's sparsity prior shrinks a plume's faint tails to zero and
a matched filter whose statistics include the plume underestimates it (HyperGas issue #60). For the
IME, plume pixels are therefore re-estimated with an albedo-corrected matched filter whose mean and
covariance come from the same detector column *with the plumes excluded*
(:mod:`hyperplex.geo.detect.background_filter`; for ``group='tile'`` one set for the scene,
:func:`hyperplex.geo.methane.classic.matched_filter_image` with ``albedo=True`` and a ``stats_mask``):

    alpha_i = (x_i - mu)^T C^-1 t / (R_i t^T C^-1 t),  t = k * mu,  R_i = x_i . mu / mu . mu

(Mag1c's first iteration without sparsity or clipping, Foote et al. 2020), in ppm·m. Its noise is zero
mean, so sums over generous plume regions are unbiased.
"""

from __future__ import annotations

import numpy as np

from hyperplex.geo.detect.background_filter import BackgroundFilter, background_filter
from hyperplex.geo.methane.options import FilterOptions
from hyperplex.geo.methane.run_setup import setup

__all__ = ["debiased_enhancement"]


def debiased_enhancement(
    cube: np.ndarray,
    template: np.ndarray,
    region: np.ndarray,
    background: np.ndarray,
    *,
    group: str = "column",
    shrinkage: float = 1e-4,
    column_filter: BackgroundFilter | None = None,
) -> np.ndarray:
    """Enhancement (ppm·m) of the ``region`` pixels from plume-free statistics; NaN elsewhere.

    Columns with no more plume-free pixels than bands use scene-wide statistics instead.

    Args:
        cube: Filter bands, ``(B, H, W)`` float32, NaN where invalid.
        template: Unit CH4 absorption of the bands (x 1e5), ``(B,)``.
        region: Pixels to estimate, ``(H, W)`` bool.
        background: Pixels allowed in the statistics (valid, not plume, not masked), ``(H, W)`` bool.
        group: 'column' (statistics per detector column) or 'tile' (one set for the scene).
        shrinkage: Covariance shrinkage towards the diagonal (keeps short columns solvable).
        column_filter: For ``group='column'``: the plume-free filter of every column when already made
            (:func:`hyperplex.geo.detect.background_filter.background_filter` with the same arguments), so
            that the caller's other uses (the uncertainty) share its pass over the cube.

    Returns:
        ``(H, W)`` float32.
    """
    out = np.full(region.shape, np.nan, dtype=np.float32)
    if group == "column":  # one streamed pass of column statistics (short columns: the pooled ones)
        f = column_filter or background_filter(cube, template, background, shrinkage=shrinkage)
        rows, cols = np.nonzero(region)
        out[rows, cols] = f.enhancement(cube[:, rows, cols].T, cols)
        return out
    if region.any() and (background & np.isfinite(cube).all(axis=0)).any():  # one set for the scene
        out[region] = _estimate(cube, template, background, "tile", shrinkage)[region]
    return out


def _estimate(
    cube: np.ndarray, template: np.ndarray, background: np.ndarray, group: str, shrinkage: float
) -> np.ndarray:
    """The albedo-corrected matched filter of ``cube`` with statistics from ``background`` only."""
    options = FilterOptions(stats_mask=~background, window=None, fill_value=None, group=group)
    run = setup(cube, None, None, options, template=template)
    from hyperplex.geo.methane.classic import matched_filter_image  # torch: only the tile path needs it

    return matched_filter_image(run, shrinkage=shrinkage, albedo=True)
