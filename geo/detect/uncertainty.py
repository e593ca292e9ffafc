"""Per-pixel 1-sigma uncertainty of the enhancement, and the IME uncertainty of a plume.

For the albedo-corrected matched filter that the mass estimate uses (:mod:`hyperplex.geo.detect.ime`),

    alpha_i = (x_i - mu)^T C^-1 t / (R_i t^T C^-1 t),  t = k * mu,  R_i = x_i . mu / mu . mu,

with ``k`` the unit absorption per ppm·m, the noise variance of ``alpha_i`` is ``1 / (R_i^2 t^T C^-1 t)``
when ``C`` is the background covariance. So the 1-sigma uncertainty in ppm·m is
``1 / (R_i sqrt(t^T C^-1 t))``, with ``mu`` and ``C`` from the plume-free pixels of the same detector column, as EMIT's
CH4UNCERT product (column-wise statistics of the operational matched filter). Sums of independent
pixels add in quadrature, so the IME's 1 sigma is ``factor * sqrt(sum (sigma_i a_i)^2)``.
"""

from __future__ import annotations

import numpy as np

from hyperplex.geo.detect.background_filter import BackgroundFilter, background_filter
from hyperplex.geo.geodesy import CH4_KG_PER_PPMM_M2

__all__ = ["enhancement_sigma", "ime_sigma_kg"]


def enhancement_sigma(
    cube: np.ndarray,
    template: np.ndarray,
    background: np.ndarray,
    *,
    shrinkage: float = 1e-4,
    column_filter: BackgroundFilter | None = None,
) -> np.ndarray:
    """1-sigma noise of the matched-filter enhancement per pixel, ppm·m; NaN where invalid.

    Columns with no more background pixels than bands use the scene-wide statistics.

    Args:
        cube: Filter bands, ``(B, H, W)`` float32, NaN where invalid.
        template: Unit CH4 absorption of the bands (x 1e5), ``(B,)``.
        background: Pixels allowed in the statistics (valid, not plume, not masked), ``(H, W)`` bool.
        shrinkage: Covariance shrinkage towards the diagonal (as the IME's filter).
        column_filter: The filter from :func:`background_filter` when already made (same arguments).

    Returns:
        ``(H, W)`` float32.
    """
    f = column_filter or background_filter(cube, template, background, shrinkage=shrinkage)
    return f.sigma(cube)


def ime_sigma_kg(sigma_ppmm: np.ndarray, area_m2: np.ndarray | float) -> float:
    """1-sigma uncertainty (kg) of an IME over pixels with independent 1-sigma errors ``sigma_ppmm``.

    Pixels without an uncertainty (NaN) are left out.
    """
    s = np.asarray(sigma_ppmm, np.float64) * np.asarray(area_m2, np.float64)
    return float(np.sqrt(np.nansum(s**2)) * CH4_KG_PER_PPMM_M2)
