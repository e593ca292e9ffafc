"""Shared plumbing of the filters: setup, applying per-group linear functionals, assembling outputs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from hyperplex.common.progress import progress
from hyperplex.geo.methane.grouping import Grouping, chunk_groups, iter_blocks, iter_chunks, resolve_device
from hyperplex.geo.methane.inputs import PreparedCube, prepare_cube, wrap_output
from hyperplex.geo.methane.options import FilterOptions
from hyperplex.geo.methane.stats import project

__all__ = ["Setup", "apply_functionals", "setup", "wrap"]


@dataclass
class Setup:
    """A prepared cube with its grouping, compute device and template tensor."""

    prepared: PreparedCube
    grouping: Grouping
    device: torch.device

    @property
    def template(self) -> torch.Tensor:
        """The unit CH4 absorption (x 1e5) of the used bands, float64 on the device."""
        return torch.as_tensor(self.prepared.template, dtype=torch.float64, device=self.device)


def setup(cube: Any, wavelengths: Any, fwhm: Any, options: FilterOptions, template: Any = None) -> Setup:
    """Validate a filter's inputs (see :func:`prepare_cube`) and build its grouping and device."""
    prepared = prepare_cube(cube, wavelengths, fwhm, options, template=template)
    grouping = Grouping.create(options.group, prepared.shape, options.group_columns, options.tile_size)
    return Setup(prepared, grouping, resolve_device(options.device))


def apply_functionals(
    run: Setup,
    offsets: torch.Tensor,
    weights: torch.Tensor,
    finish: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
) -> np.ndarray:
    """Evaluate ``finish((x - offsets[g]) @ weights[g], g)`` for every pixel; NaN where invalid.

    Args:
        run: The setup.
        offsets: (G, C) offsets.
        weights: (G, C, K) functionals.
        finish: Maps the (W, h, K) functionals and the chunk's column groups (W,) to a (W, h) image.

    Returns:
        The (H, W) float32 image.
    """
    out = np.full(run.prepared.shape, np.nan, dtype=np.float32)
    if run.grouping.kind == "tile":
        _apply_tiles(run, offsets, weights, finish, out)
        return out
    for chunk in progress(
        iter_chunks(run.prepared, run.grouping, run.device), desc="filter", unit="chunk", leave=False
    ):
        gid = chunk_groups(run.grouping, chunk.r0, run.device)
        values = finish(project(chunk, gid, offsets, weights), gid).to(torch.float32)
        values = torch.where(chunk.valid, values, torch.full_like(values, float("nan")))
        out[chunk.r0 : chunk.r1] = values.T.cpu().numpy()
    return out


def _apply_tiles(
    run: Setup,
    offsets: torch.Tensor,
    weights: torch.Tensor,
    finish: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    out: np.ndarray,
) -> None:
    """Tile mode on channel-first blocks: one (K, C) x (C, P) product per tile segment, no transposes."""
    offsets32, weights32 = offsets.to(torch.float32), weights.to(torch.float32)
    for block in progress(
        iter_blocks(run.prepared, run.grouping, run.device), desc="filter", unit="block", leave=False
    ):
        for c0, c1, g in run.grouping.segments(block.r0):
            x = block.data[:, :, c0:c1]
            flat = x.reshape(x.shape[0], -1) - offsets32[g][:, None]
            values = (weights32[g].T @ flat).reshape(-1, x.shape[1], x.shape[2]).permute(2, 1, 0)  # (w, h, K)
            gid = torch.full((x.shape[2],), g, dtype=torch.int64, device=run.device)
            image = finish(values, gid).to(torch.float32).T  # (h, w)
            image = torch.where(block.valid[:, c0:c1], image, float("nan"))
            out[block.r0 : block.r1, c0:c1] = image.cpu().numpy()


def wrap(run: Setup, image: np.ndarray, name: str, units: str) -> Any:
    """The filter's output: the image, or a DataArray for xarray input."""
    return wrap_output(run.prepared, image, name, units)
