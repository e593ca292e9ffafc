"""A filter run's prepared inputs: the cube, its statistics groups and its compute device (no torch import).

The device is resolved when first asked for: the compiled CPU path of Mag1c only asks :attr:`Setup.on_cpu`,
which needs no torch on a CPU-only install (:func:`~hyperplex.geo.methane.devices.runs_on_cpu`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from hyperplex.geo.methane.devices import resolve_device, runs_on_cpu
from hyperplex.geo.methane.groups import Grouping
from hyperplex.geo.methane.inputs import PreparedCube, prepare_cube, wrap_output
from hyperplex.geo.methane.options import FilterOptions

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["Setup", "setup", "wrap"]


@dataclass
class Setup:
    """A prepared cube with its grouping and compute device.

    Attributes:
        prepared: The cube, validated, restricted to the used bands.
        grouping: The statistics groups.
        device_option: The device as the filters take it (None: CUDA when available, a string, a torch device).
    """

    prepared: PreparedCube
    grouping: Grouping
    device_option: Any = None

    @property
    def on_cpu(self) -> bool:
        """Whether the run computes on the CPU (without importing torch where the install tells)."""
        return runs_on_cpu(self.device_option)

    @cached_property
    def device(self) -> torch.device:
        """The torch device (imports torch)."""
        return resolve_device(self.device_option)

    @property
    def template(self) -> torch.Tensor:
        """The unit CH4 absorption (x 1e5) of the used bands, float64 on the device."""
        import torch

        return torch.as_tensor(self.prepared.template, dtype=torch.float64, device=self.device)


def setup(cube: Any, wavelengths: Any, fwhm: Any, options: FilterOptions, template: Any = None) -> Setup:
    """Validate a filter's inputs (see :func:`prepare_cube`), its device, and build its grouping.

    Raises:
        InvalidParameterError: For a device that cannot be used (before any data is read).
    """
    runs_on_cpu(options.device)  # validates the device option early
    prepared = prepare_cube(cube, wavelengths, fwhm, options, template=template)
    grouping = Grouping.create(options.group, prepared.shape, options.group_columns, options.tile_size)
    return Setup(prepared, grouping, options.device)


def wrap(run: Setup, image: np.ndarray, name: str, units: str) -> Any:
    """The filter's output: the image, or a DataArray for xarray input."""
    return wrap_output(run.prepared, image, name, units)
