"""Positional embeddings as the official ChannelViT and ChAda-ViT code computes them (DINO's interpolation).

Both official repositories copy DINO's ``interpolate_pos_encoding``: the learned square grid of ``N``
patch embeddings is resized bicubically with ``scale_factor=((rows + 0.1) / sqrt(N), (cols + 0.1) / sqrt(N))``
(https://github.com/facebookresearch/dino/issues/8), not with ``size=``. Sampling with that scale factor is
not an identity even when the output grid equals the stored one. Which inputs take the resize differs:

- ChannelViT (insitro/ChannelViT ``interpolate_pos_encoding``) compares the patch-token count of *all*
  channels, ``C * n``, with ``N``: with more than one channel it always resizes, also at the training size.
- ChAda-ViT (nicoboou/chadavit ``add_pos_encoding_per_channel``) compares the per-channel count ``n``.

Either keeps the stored embedding only when the counts are equal and the image is square (``H == W`` in pixels).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["POS_EMBED_INTERP", "check_pos_embed_interp", "dino_resample_patches", "official_patch_pos"]

#: ``exact``: the stored grid as is at the training size, ``size=`` bicubic resize elsewhere (hyperplex's
#: default); ``official``: what the official code computes (DINO ``scale_factor`` resize, official conditions).
POS_EMBED_INTERP = ("exact", "official")


def check_pos_embed_interp(value: str) -> str:
    """Return ``value`` if it is one of :data:`POS_EMBED_INTERP`.

    Raises:
        ValueError: Naming the parameter and its choices.
    """
    if value not in POS_EMBED_INTERP:
        raise ValueError(f"`pos_embed_interp` must be one of {list(POS_EMBED_INTERP)}; got {value!r}.")
    return value


def dino_resample_patches(patches: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """DINO's bicubic resize of square-grid patch embeddings (1, N, D) to ``grid`` (rows, cols).

    Raises:
        ValueError: If the stored grid is not square or the resize misses ``grid``.
    """
    n, dim = patches.shape[1], patches.shape[-1]
    side = int(math.sqrt(n))
    if side * side != n:
        raise ValueError(f"Stored positional embedding has {n} patches, not a square grid.")
    image = patches.reshape(1, side, side, dim).permute(0, 3, 1, 2)
    scale = ((grid[0] + 0.1) / math.sqrt(n), (grid[1] + 0.1) / math.sqrt(n))
    image = F.interpolate(image, scale_factor=scale, mode="bicubic")
    if tuple(image.shape[-2:]) != tuple(grid):
        raise ValueError(f"DINO interpolation gave a {tuple(image.shape[-2:])} grid, expected {tuple(grid)}.")
    return image.permute(0, 2, 3, 1).reshape(1, -1, dim)


def official_patch_pos(
    pos_embed: torch.Tensor, image_size: tuple[int, int], patch_size: int, compared_tokens: int
) -> torch.Tensor:
    """Patch positional embeddings (1, rows * cols, D) as the official code builds them for one channel.

    Args:
        pos_embed: Stored embedding (1, 1 + N, D), CLS first.
        image_size: Input height and width in pixels.
        patch_size: Patch side.
        compared_tokens: The token count the official code compares with ``N`` (ChannelViT: ``C * n``,
            ChAda-ViT: ``n``).
    """
    patches = pos_embed[:, 1:]
    if compared_tokens == patches.shape[1] and image_size[0] == image_size[1]:
        return patches
    return dino_resample_patches(patches, (image_size[0] // patch_size, image_size[1] // patch_size))
