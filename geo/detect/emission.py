"""Emission rate of a plume by the integrated mass enhancement (IME) method.

    Q = U_eff * IME / L,   L = sqrt(A)

with ``A`` the plume area and ``U_eff`` an effective wind speed calibrated against large-eddy
simulations as a function of the 10 m wind ``U10`` (Varon et al. 2018, Atmos. Meas. Tech. 11,
5673-5686, doi:10.5194/amt-11-5673-2018). We use the linear calibration ``U_eff = 0.33 U10 + 0.45``
(m/s) that the issue and Varon et al. 2021 (Atmos. Meas. Tech. 14, 2771-2785, doi:10.5194/amt-14-2771-2021)
give for plume masks of 20-60 m pixels; the coefficients are arguments, so another calibration is one
call away. Uncertainties (1 sigma) of the wind and of the IME are propagated to first order:

    (sigma_Q / Q)^2 = (0.33 sigma_U10 / U_eff)^2 + (sigma_IME / IME)^2

(the calibration's own scatter is not included).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hyperplex.common.errors import InvalidParameterError

__all__ = ["UEFF_INTERCEPT", "UEFF_SLOPE", "EmissionRate", "effective_wind", "emission_rate"]

#: ``U_eff = UEFF_SLOPE * U10 + UEFF_INTERCEPT`` (m/s).
UEFF_SLOPE = 0.33
UEFF_INTERCEPT = 0.45
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
