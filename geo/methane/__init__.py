"""Methane filters on radiance cubes: target spectrum, matched filter, Mag1c, Mag1c-SAS, CEM, ACE, band selection.

All filters take a 3-D radiance cube (numpy, memmap, dask, zarr or an xarray DataArray with a band dimension),
its band centres and FWHM (nm), and return an (H, W) float32 image with NaN where pixels are invalid (fill
-9999, non-finite, all-zero or masked). MF, Mag1c and Mag1c-SAS return CH4 enhancement in ppm·m; CEM and
ACE return detection scores. Computation runs on torch (CUDA when available, CPU otherwise); Mag1c runs
compiled kernels on the CPU (:mod:`.mag1c_filter`).

The filters share their input, validity and grouping options (:class:`.options.FilterOptions`, e.g.
``stats_mask`` to keep known plumes out of the background statistics) and the plumbing that reads, groups
and validates cubes (:mod:`.inputs`, :mod:`.grouping`, :mod:`.stats`, :mod:`.linalg`, :mod:`.runner`).
"""

from hyperplex.geo.methane.bands import select_bands
from hyperplex.geo.methane.classic import ace, cem, matched_filter
from hyperplex.geo.methane.mag1c_filter import mag1c
from hyperplex.geo.methane.sas import mag1c_sas
from hyperplex.geo.methane.target import target_spectrum

__all__ = ["ace", "cem", "mag1c", "mag1c_sas", "matched_filter", "select_bands", "target_spectrum"]
