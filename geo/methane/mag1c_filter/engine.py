"""The interface between Mag1c's driver and its two implementations (engines).

An engine takes the prepared inputs (:class:`hyperplex.geo.methane.runner.Setup`: the cube restricted to the
used bands, with validity, masks and template; the statistics groups; the device) and Mag1c's settings, and
returns the enhancement and albedo factor images. Engines differ only in how they compute, not in what:

* :class:`.compiled_engine.CompiledEngine`: numba kernels on the CPU, column groups only;
* :class:`.torch_engine.TorchEngine`: torch operations batched over all groups (GPU, tiles, any settings).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from hyperplex.geo.methane.backend import to_numpy
from hyperplex.geo.methane.mag1c_filter.settings import Mag1cSettings
from hyperplex.geo.methane.run_setup import Setup
from hyperplex.geo.methane.target import TARGET_SCALING

__all__ = ["Mag1cEngine", "Mag1cResult", "output_images"]


@dataclass(frozen=True)
class Mag1cResult:
    """What an engine returns.

    Attributes:
        enhancement: (H, W) float32 CH4 enhancement in ppm·m, NaN where invalid.
        albedo: (H, W) float32 albedo factor R, NaN where invalid.
        final: The last iteration's statistics per group: mean (G, C), C^-1 t (G, C) and the normaliser
            t.C^-1 t (G,), float64 (Mag1c-SAS applies them to every pixel): numpy arrays from the compiled
            engine, tensors on the device from the torch engine.
    """

    enhancement: np.ndarray
    albedo: np.ndarray
    final: tuple[Any, Any, Any]


class Mag1cEngine(Protocol):
    """A Mag1c implementation."""

    def run(self, run: Setup, settings: Mag1cSettings) -> Mag1cResult:
        """Run Mag1c on the prepared inputs.

        Raises:
            NoValidDataError: If no pixel is left for the statistics.
        """
        ...


def output_images(alpha: Any, ratio: Any, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel alpha and R (image order, H * W, float64; numpy or tensors) as the (H, W) float32 images.

    alpha is scaled to ppm·m; both are NaN where ``valid`` (H, W) is False.
    """
    shape = valid.shape
    enhancement = (to_numpy(alpha) * TARGET_SCALING).astype(np.float32).reshape(shape)
    factor = to_numpy(ratio).astype(np.float32).reshape(shape)
    enhancement[~valid] = np.nan
    factor[~valid] = np.nan
    return enhancement, factor
