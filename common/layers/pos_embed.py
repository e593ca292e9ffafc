"""Positional embeddings: fixed sin-cos (1-D, 2-D, continuous) and resampling of learned ones."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["positional_channel_embed", "resample_pos_embed", "sincos_1d", "sincos_2d"]


def sincos_1d(positions: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """Sin-cos embedding of continuous positions (MAE convention: ``[sin | cos]``).

    ``omega_i = 1 / temperature ** (2 i / dim)`` for ``i < dim / 2``. Positions may be any real
    numbers (patch indices, metres, wavelengths in nm).

    Args:
        positions: Any shape ``S``.
        dim: Embedding width; must be even.
        temperature: Longest wavelength of the frequencies.

    Returns:
        Float tensor of shape ``S + (dim,)``.

    Raises:
        ValueError: If ``dim`` is odd.
    """
    if dim % 2:
        raise ValueError(f"sin-cos embedding width must be even, got {dim}.")
    omega = torch.arange(dim // 2, dtype=torch.float64, device=positions.device) / (dim / 2.0)
    omega = 1.0 / temperature**omega
    angles = positions.to(torch.float64)[..., None] * omega
    return torch.cat([angles.sin(), angles.cos()], dim=-1).float()


def sincos_2d(grid_h: int, grid_w: int, dim: int, spacing: float = 1.0) -> torch.Tensor:
    """2-D sin-cos embedding of a patch grid, row-major (MAE ``get_2d_sincos_pos_embed`` layout).

    The first half of the width encodes the column coordinate, the second half the row coordinate
    (MAE's meshgrid order), each ``index * spacing``.

    Args:
        grid_h: Patch rows.
        grid_w: Patch columns.
        dim: Embedding width; must be a multiple of 4.
        spacing: Distance between neighbouring patches (1 for indices, or e.g. metres).

    Returns:
        Tensor (grid_h * grid_w, dim).

    Raises:
        ValueError: If ``dim`` is not a multiple of 4.
    """
    if dim % 4:
        raise ValueError(f"2-D sin-cos embedding width must be a multiple of 4, got {dim}.")
    rows = torch.arange(grid_h, dtype=torch.float64).repeat_interleave(grid_w) * spacing
    cols = torch.arange(grid_w, dtype=torch.float64).repeat(grid_h) * spacing
    return torch.cat([sincos_1d(cols, dim // 2), sincos_1d(rows, dim // 2)], dim=-1)


def resample_pos_embed(pos_embed: torch.Tensor, new_grid: tuple[int, int], num_prefix: int = 1) -> torch.Tensor:
    """Bicubically resize a learned (1, prefix + N, D) positional embedding to another patch grid.

    The old grid must be square (as in DINO/ChannelViT checkpoints); prefix tokens (CLS,
    registers) are kept as they are.

    Args:
        pos_embed: Learned embedding, (1, num_prefix + gh * gw, D).
        new_grid: Target grid (rows, cols).
        num_prefix: Number of leading non-spatial tokens.

    Returns:
        Tensor (1, num_prefix + rows * cols, D).

    Raises:
        ValueError: If the stored grid is not square.
    """
    prefix, patches = pos_embed[:, :num_prefix], pos_embed[:, num_prefix:]
    n = patches.shape[1]
    side = math.isqrt(n)
    if side * side != n:
        raise ValueError(f"Stored positional embedding has {n} patches, not a square grid.")
    if (side, side) == tuple(new_grid):
        return pos_embed
    grid = patches.reshape(1, side, side, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid.float(), size=tuple(new_grid), mode="bicubic", align_corners=False)
    patches = grid.permute(0, 2, 3, 1).reshape(1, -1, pos_embed.shape[-1]).to(pos_embed.dtype)
    return torch.cat([prefix, patches], dim=1)


def positional_channel_embed(
    wavelengths: torch.Tensor, grid: tuple[int, int], dim: int, gsd: float = 1.0, cls_token: bool = True
) -> torch.Tensor:
    """LESS continuous positional-channel embedding of a spatial-spectral token grid.

    ``E[c, n] = (sincos_1d(wavelength_c) + sincos_2d(n * gsd)) / 2``; with ``cls_token`` the CLS
    row/column get zero for their missing component (official ``PositionalChannelEmbedding``).

    Args:
        wavelengths: Centre wavelengths in nm, (C,).
        grid: Patch rows and columns.
        dim: Embedding width (multiple of 4).
        gsd: Ground sampling distance (metres per pixel); grid index times ``gsd`` is encoded.
        cls_token: Add the CLS row and column.

    Returns:
        Tensor (C [+1], N [+1], dim).
    """
    chan = sincos_1d(wavelengths.detach().to(torch.float64).cpu(), dim)
    pos = sincos_2d(grid[0], grid[1], dim, spacing=gsd)
    if cls_token:
        chan = torch.cat([chan.new_zeros(1, dim), chan])
        pos = torch.cat([pos.new_zeros(1, dim), pos])
    return (chan[:, None, :] + pos[None, :, :]) / 2
