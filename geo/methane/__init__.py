"""Methane filters on radiance cubes: target spectrum, matched filter, Mag1c, Mag1c-SAS, CEM, ACE, band selection.

All filters take a 3-D radiance cube (numpy, memmap, dask, zarr or an xarray DataArray with a band dimension),
its band centres and FWHM (nm), and return an (H, W) float32 image with NaN where pixels are invalid (fill
-9999, non-finite, all-zero or masked). MF, Mag1c and Mag1c-SAS return CH4 enhancement in ppm*m; CEM and
ACE return detection scores. Computation runs on torch (CUDA when available, CPU otherwise).

The names are imported on first use, so reading the method registry (:mod:`hyperplex.geo.methane.registry`,
the CLI's ``--method`` choices) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

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

_LAZY = {
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


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access."""
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
