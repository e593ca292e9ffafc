"""Shared plumbing of the filters: setup (:mod:`.run_setup`, re-exported), applying per-group linear functionals."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from hyperplex.common.progress import progress
from hyperplex.geo.methane.grouping import chunk_groups, iter_blocks, iter_chunks
from hyperplex.geo.methane.run_setup import Setup, setup, wrap
from hyperplex.geo.methane.stats import project

__all__ = ["Setup", "apply_functionals", "setup", "wrap"]


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
