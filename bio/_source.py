"""Normalise writer inputs: an array or a MultiscaleImage becomes pyramid levels, channels and pixel size."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dask
import dask.array as da
import numpy as np

from hyperplex.bio.pyramid import pyramid
from hyperplex.common.arrays import unwrap
from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import InvalidParameterError
from hyperplex.common.image import MultiscaleImage

__all__ = ["iter_strips", "prepare"]


def prepare(
    data: Any, channels: Any, pixel_size_um: Any, levels: int | None, method: str = "mean"
) -> tuple[list[da.Array], ChannelSet, tuple[float, float] | None]:
    """Turn writer input into lazy ``(C, Y, X)`` levels, a ChannelSet and a ``(y, x)`` pixel size in µm.

    A :class:`MultiscaleImage` brings its own channels, pixel size and levels (kept when ``levels`` is
    None). An xarray DataArray brings its channel coordinates. Explicit arguments win.

    Raises:
        InvalidParameterError: If the data is not 2-D/3-D or the pixel size is not positive.
        ChannelMismatchError: If ``channels`` does not match the channel count.
    """
    if isinstance(data, MultiscaleImage):
        channels = data.channels if channels is None else channels
        pixel_size_um = data.pixel_size_um if pixel_size_um is None else pixel_size_um
        given = [lvl if isinstance(lvl, da.Array) else da.asarray(lvl) for lvl in data.levels]
        base = given[0]
    else:
        if channels is None and hasattr(data, "dims") and hasattr(data, "coords"):
            channels = ChannelSet.from_xarray(data)
        arr = unwrap(data)
        eager = isinstance(arr, np.ndarray)
        base = arr if isinstance(arr, da.Array) else da.asarray(arr)
        base = base[None] if base.ndim == 2 else base
        given = None
    if base.ndim != 3:
        raise InvalidParameterError(f"`data` must be (C, Y, X) or (Y, X); got shape {base.shape}.")
    chans = ChannelSet.default(base.shape[0]) if channels is None else ChannelSet.coerce(channels, base.shape[0])
    lvls = list(given) if given is not None and levels is None else pyramid(base, levels, method)
    if given is None and eager:  # in-memory input: build the (small) pyramid once, then write from memory
        lvls = [da.from_array(lvl, chunks=(1, 1024, 1024)) for lvl in dask.compute(*lvls)]
    return lvls, chans, _pixel_size(pixel_size_um)


def _pixel_size(value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    pair = (float(value), float(value)) if np.isscalar(value) else tuple(float(v) for v in value)
    if len(pair) != 2 or not all(np.isfinite(p) and p > 0 for p in pair):
        raise InvalidParameterError(f"`pixel_size_um` must be a positive number or a (y, x) pair; got {value!r}.")
    return pair  # type: ignore[return-value]


def iter_strips(level: da.Array, channel: int, rows: int) -> Iterator[np.ndarray]:
    """Compute one channel of a level in horizontal strips of ``rows`` rows (bounded memory)."""
    for top in range(0, level.shape[1], rows):
        yield np.asarray(level[channel, top : top + rows].compute())
