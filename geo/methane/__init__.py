"""Methane filters on radiance cubes: target spectrum, matched filter, Mag1c, Mag1c-SAS, CEM, ACE, band selection.

All filters take a 3-D radiance cube (numpy, memmap, dask, zarr or an xarray DataArray with a band dimension),
its band centres and FWHM (nm), and return an (H, W) float32 image with NaN where pixels are invalid (fill
-9999, non-finite, all-zero or masked). MF, Mag1c and Mag1c-SAS return CH4 enhancement in ppm*m; CEM and
ACE return detection scores. Computation runs on torch (CUDA when available, CPU otherwise).
"""

from hyperplex.geo.methane.bands import select_bands
from hyperplex.geo.methane.classic import ace, cem, matched_filter
from hyperplex.geo.methane.mag1c_filter import mag1c
from hyperplex.geo.methane.registry import get_method, list_methods, register_method
from hyperplex.geo.methane.sas import mag1c_sas
from hyperplex.geo.methane.target import target_spectrum

__all__ = [
    "ace",
    "cem",
    "get_method",
    "list_methods",
    "mag1c",
    "mag1c_sas",
    "matched_filter",
    "register_method",
    "select_bands",
    "target_spectrum",
]
