"""Build lazy pyramid levels by 2x downsampling (mean for intensities, nearest for labels)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from hyperplex.common.errors import InvalidParameterError

if TYPE_CHECKING:
    import dask.array as da

__all__ = ["auto_levels", "downsample", "pyramid"]


def auto_levels(shape: tuple[int, ...], min_size: int = 256) -> int:
    """Number of levels (including level 0) halving until the smaller side is at most ``min_size``."""
    side, count = min(shape[-2:]), 1
    while side > min_size:
        side //= 2
        count += 1
    return count


def downsample(array: Any, method: str = "mean") -> da.Array:
    """Halve the last two axes of a ``(C, Y, X)`` array lazily (odd edges are trimmed).

    Args:
        array: The array.
        method: ``"mean"`` (2x2 block mean, rounded back to integer dtypes) or ``"nearest"`` (every other
            pixel; use it for label images).

    Returns:
        The downsampled dask array, same dtype.

    Raises:
        InvalidParameterError: If ``method`` is unknown or the image is too small to halve.
    """
    import dask.array as da

    array = array if isinstance(array, da.Array) else da.asarray(array)
    h, w = array.shape[-2] // 2 * 2, array.shape[-1] // 2 * 2
    if h == 0 or w == 0:
        raise InvalidParameterError(f"Cannot halve an image of shape {array.shape}; use fewer pyramid levels.")
    if method == "nearest":
        return array[..., :h:2, :w:2]
    if method != "mean":
        raise InvalidParameterError(f"`downsample` must be 'mean' or 'nearest'; got {method!r}.")
    trimmed = array[..., :h, :w]
    ny, nx = array.ndim - 2, array.ndim - 1
    trimmed = trimmed.rechunk({ny: _even(trimmed.chunks[ny]), nx: _even(trimmed.chunks[nx])})
    mean = da.coarsen(np.mean, trimmed.astype(np.float32), {ny: 2, nx: 2}, trim_excess=True)
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        mean = da.clip(da.round(mean), info.min, info.max)
    return mean.astype(array.dtype)


def _even(chunks: tuple[int, ...]) -> tuple[int, ...]:
    """Chunk sizes with every chunk but the last even, so 2x2 blocks never straddle chunks."""
    total, size = sum(chunks), max(chunks)
    size += size % 2
    sizes = [size] * (total // size)
    return (*sizes, total - size * len(sizes)) if total % size else tuple(sizes)


def pyramid(array: Any, levels: int | None = None, method: str = "mean", min_size: int = 256) -> list[da.Array]:
    """Level 0 plus ``levels - 1`` successively halved levels, all lazy.

    Args:
        array: ``(C, Y, X)`` (or ``(Y, X)``) array of any type dask accepts.
        levels: Total number of levels; None picks :func:`auto_levels`.
        method: Downsampling method, see :func:`downsample`.
        min_size: For automatic levels, stop once the smaller side is at most this.

    Returns:
        The levels, finest first.
    """
    import dask.array as da

    base = array if isinstance(array, da.Array) else da.asarray(array)
    count = auto_levels(base.shape, min_size) if levels is None else int(levels)
    if count < 1:
        raise InvalidParameterError(f"`levels` must be at least 1; got {levels}.")
    out = [base]
    for _ in range(count - 1):
        out.append(downsample(out[-1], method))
    return out
