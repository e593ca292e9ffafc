"""The options every methane filter shares (MF, CEM, ACE, Mag1c, Mag1c-SAS), in one frozen dataclass.

Each public filter keeps its explicit keyword arguments and passes them here by name; the shared plumbing
(:func:`hyperplex.geo.methane.runner.setup`) reads only this object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hyperplex.geo.methane.inputs import FILL_VALUE

if TYPE_CHECKING:
    import torch

__all__ = ["DEFAULT_WINDOW", "FilterOptions", "Window"]

#: A wavelength range in nm (inclusive), or None for every band.
Window = tuple[float, float] | None
#: mag1c's default fitting window, nm.
DEFAULT_WINDOW: tuple[float, float] = (2122.0, 2488.0)


@dataclass(frozen=True)
class FilterOptions:
    """Input, validity and grouping options shared by all filters.

    Attributes:
        channel_axis: Axis of the cube holding bands (ignored for xarray, which uses its band dimension).
        mask: (H, W) bool, True = pixel excluded from the background statistics *and* from the output (NaN).
        stats_mask: (H, W) bool, True = pixel excluded from the background statistics only: it is still
            filtered and gets a value in the output. Use it for known plumes (or other targets), whose
            signal would otherwise enter the mean and covariance and bias the enhancement low.
        window: Wavelength range (nm) of the bands used, inclusive; None = every band.
        bands: Explicit band indices (e.g. from :func:`hyperplex.geo.methane.select_bands`); overrides
            ``window``.
        fill_value: Value marking missing data (None disables the check).
        group: 'column' (statistics per ``group_columns`` adjacent detector columns, all lines) or 'tile'.
        group_columns: Adjacent columns per group (column mode; mag1c's ``--group``).
        tile_size: Tile edge in pixels (tile mode); None = the whole cube is one tile.
        device: Torch device; None = CUDA when available, else CPU.
    """

    channel_axis: int = 0
    mask: Any = None
    stats_mask: Any = None
    window: Window = DEFAULT_WINDOW
    bands: Sequence[int] | np.ndarray | None = None
    fill_value: float | None = FILL_VALUE
    group: str = "column"
    group_columns: int = 1
    tile_size: int | None = None
    device: str | torch.device | None = None
