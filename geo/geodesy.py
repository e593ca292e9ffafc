"""Ground areas of geographic grid cells, and methane mass from enhancement."""

from __future__ import annotations

import numpy as np

__all__ = ["CH4_KG_PER_PPMM_M2", "cell_area_m2", "ime_kg"]

_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LON_EQUATOR = 111_320.0
#: kg of CH4 per (ppm·m · m²): 1e-6 · (1000 / 22.4 mol m⁻³) · 0.01604 kg mol⁻¹ (emit-ghg's IME factor).
CH4_KG_PER_PPMM_M2 = 1e-6 * (1000.0 / 22.4) * 0.01604


def cell_area_m2(res_lon_deg: float, res_lat_deg: float, lat_deg: float | np.ndarray) -> float | np.ndarray:
    """Area in m² of a ``res_lon_deg`` x ``res_lat_deg`` cell centred at latitude ``lat_deg``."""
    width = abs(res_lon_deg) * _M_PER_DEG_LON_EQUATOR * np.cos(np.deg2rad(lat_deg))
    return width * abs(res_lat_deg) * _M_PER_DEG_LAT


def ime_kg(ppmm: np.ndarray | float, pixel_area_m2: np.ndarray | float) -> float:
    """Integrated mass enhancement (kg CH4): the sum over pixels of enhancement x pixel area x factor."""
    return float(np.nansum(np.asarray(ppmm, dtype=np.float64) * pixel_area_m2) * CH4_KG_PER_PPMM_M2)
