"""Methane filters on radiance cubes: target spectrum, matched filter, Mag1c, Mag1c-SAS, CEM, ACE, band selection.

All filters take a 3-D radiance cube (numpy, memmap, dask, zarr or an xarray DataArray with a band dimension),
its band centres and FWHM (nm), and return an (H, W) float32 image with NaN where pixels are invalid (fill
-9999, non-finite, all-zero or masked). MF, Mag1c and Mag1c-SAS return CH4 enhancement in ppm·m; CEM and
ACE return detection scores. Computation runs on torch (CUDA when available, CPU otherwise); Mag1c runs
compiled kernels on the CPU (:mod:`.mag1c_filter`, algorithm note in ``mag1c_filter/ALGORITHM.md``) with
its statistics in numpy, so that path never imports torch (:mod:`.backend`).

The filters share their input, validity and grouping options (:class:`.options.FilterOptions`, e.g.
``stats_mask`` to keep known plumes out of the background statistics) and the plumbing that reads, groups
and validates cubes (:mod:`.inputs`, :mod:`.grouping`, :mod:`.stats`, :mod:`.linalg`, :mod:`.runner`).
:mod:`.registry` names every detection method for the pipeline, the CLI and the napari plugin.

The names are imported on first use, so reading the method registry (the CLI's ``--method`` choices) does
not import torch.
"""

from hyperplex.common.lazy import lazy_exports

_PUBLIC = {
    "ace": "classic",
    "cem": "classic",
    "get_method": "registry",
    "list_methods": "registry",
    "mag1c": "mag1c_filter",
    "mag1c_sas": "sas",
    "matched_filter": "classic",
    "register_method": "registry",
    "select_bands": "bands",
    "target_spectrum": "target",
}
__all__ = sorted(_PUBLIC)
__getattr__ = lazy_exports(__name__, {name: f"{__name__}.{module}" for name, module in _PUBLIC.items()})
