"""Emission rate of a plume by the integrated mass enhancement (IME) method.

    Q = U_eff * IME / L,   L = sqrt(A)

with ``A`` the plume area and ``U_eff`` an effective wind speed, calibrated against large-eddy simulations
as a function of the 10 m wind ``U10`` (the method: Varon et al. 2018, Atmos. Meas. Tech. 11, 5673-5686,
doi:10.5194/amt-11-5673-2018). The calibration depends on the pixel size and the plume masking, so it is
taken for EMIT (60 m pixels):

    U_eff = 0.36 U10 + 0.43  (m/s)

the EMIT CH4 point-source IME calibration of HyperGas 1.0 (Zhang et al. 2026, Geosci. Model Dev. 19,
5979-6000, doi:10.5194/gmd-19-5979-2026; coefficients ``ime_calibration: ch4: point-source: EMIT:
alpha2 0.43, alpha3 0.36`` with ``alpha1 = 0`` for the log term, in the package's ``config.yaml``).
Other published calibrations, not used: Varon et al. 2018 (GHGSat-D, 50 m) ``U_eff = a ln U10 + 0.6``;
Varon et al. 2021 (Sentinel-2, 20 m; Atmos. Meas. Tech. 14, 2771-2785, doi:10.5194/amt-14-2771-2021)
``U_eff = 0.33 U10 + 0.45``; HyperGas gives 0.33 U10 + 0.44 for EnMAP and 0.32 U10 + 0.43 for PRISMA
(30 m). The coefficients are arguments, so another calibration is one call away. Uncertainties
(1 sigma) of the wind and of the IME are propagated to first order:

    (sigma_Q / Q)^2 = (0.36 sigma_U10 / U_eff)^2 + (sigma_IME / IME)^2

(the calibration's own scatter is not included).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hyperplex.common.errors import InvalidParameterError

__all__ = ["UEFF_CALIBRATION", "UEFF_INTERCEPT", "UEFF_SLOPE", "EmissionRate", "effective_wind", "emission_rate"]

#: ``U_eff = UEFF_SLOPE * U10 + UEFF_INTERCEPT`` (m/s): EMIT point sources, HyperGas 1.0 (Zhang et al. 2026).
UEFF_SLOPE = 0.36
UEFF_INTERCEPT = 0.43
#: The calibration in words, for run records.
UEFF_CALIBRATION = (
    f"U_eff = {UEFF_SLOPE} U10 + {UEFF_INTERCEPT} m/s (EMIT CH4 point-source IME calibration of HyperGas 1.0, "
    "Zhang et al. 2026, GMD 19, 5979-6000; IME method of Varon et al. 2018, AMT 11, 5673-5686)"
)
_S_PER_H = 3600.0


@dataclass(frozen=True)
class EmissionRate:
    """An emission rate and its 1 sigma, kg/h, with the effective wind and length scale used."""

    rate_kg_h: float
    sigma_kg_h: float
    u_eff_m_s: float
    length_m: float


def effective_wind(u10: float, slope: float = UEFF_SLOPE, intercept: float = UEFF_INTERCEPT) -> float:
    """Effective wind speed (m/s) for the IME method from the 10 m wind speed.

    Raises:
        InvalidParameterError: For a negative or non-finite wind speed.
    """
    if not (math.isfinite(u10) and u10 >= 0):
        raise InvalidParameterError(f"--wind-speed must be a finite speed >= 0 m/s; got {u10}.")
    return slope * u10 + intercept


def emission_rate(
    ime_kg: float,
    ime_sigma_kg: float,
    area_m2: float,
    u10: float,
    u10_sigma: float = 0.0,
    *,
    slope: float = UEFF_SLOPE,
    intercept: float = UEFF_INTERCEPT,
) -> EmissionRate:
    """``Q = U_eff IME / sqrt(A)`` in kg/h with its first-order 1-sigma uncertainty.

    Args:
        ime_kg: Integrated mass enhancement, kg.
        ime_sigma_kg: Its 1 sigma, kg.
        area_m2: Plume area, m².
        u10: 10 m wind speed, m/s.
        u10_sigma: Its 1 sigma, m/s.
        slope: ``U_eff`` per m/s of ``U10``.
        intercept: ``U_eff`` at zero wind, m/s.

    Raises:
        InvalidParameterError: For a non-positive area, negative sigmas or a bad wind speed.
    """
    if not (area_m2 > 0):
        raise InvalidParameterError(f"Plume area must be positive for an emission rate; got {area_m2} m².")
    if u10_sigma < 0 or ime_sigma_kg < 0:
        raise InvalidParameterError(
            f"--wind-speed-sigma and the IME sigma must be >= 0; got {u10_sigma}, {ime_sigma_kg}."
        )
    u_eff = effective_wind(u10, slope, intercept)
    length = math.sqrt(area_m2)
    rate = u_eff * ime_kg / length * _S_PER_H
    rel_wind = slope * u10_sigma / u_eff
    rel_ime = ime_sigma_kg / ime_kg if ime_kg > 0 else 0.0
    sigma = abs(rate) * math.hypot(rel_wind, rel_ime) if ime_kg > 0 else u_eff * ime_sigma_kg / length * _S_PER_H
    return EmissionRate(rate, sigma, u_eff, length)
