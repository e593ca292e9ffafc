"""Bring arrays with any axis layout (``TCZYX``, ``YXS``, ``QYX`` ...) to channel-first ``(C, Y, X)``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dask.array as da

from hyperplex.common.errors import FileFormatError, InvalidParameterError

__all__ = ["to_cyx"]

#: Axis letters that may hold channels, in order of preference (tifffile and NGFF spellings, upper case).
_CHANNEL_LETTERS = ("C", "S", "I", "Q", "E", "R", "L", "V", "H", "A", "P", "M")


def _select(array: da.Array, axes: str, select: Mapping[str, int], source: str) -> tuple[da.Array, str]:
    for key, index in select.items():
        letter = key.upper()
        if letter not in axes:
            raise InvalidParameterError(f"{source}: cannot select {key}={index}; the axes are {axes!r}.")
        pos = axes.index(letter)
        if not 0 <= index < array.shape[pos]:
            raise InvalidParameterError(f"{source}: {key}={index} is out of range 0..{array.shape[pos] - 1}.")
        array = array[(slice(None),) * pos + (index,)]
        axes = axes[:pos] + axes[pos + 1 :]
    return array, axes


def _drop_singletons(array: da.Array, axes: str) -> tuple[da.Array, str]:
    keep = [i for i, a in enumerate(axes) if array.shape[i] != 1 or a in "YX"]
    drop = tuple(i for i in range(len(axes)) if i not in keep)
    return (array.squeeze(axis=drop) if drop else array), "".join(axes[i] for i in keep)


def _channel_axes(axes: str, strict: bool, source: str, shape: tuple[int, ...]) -> str:
    extra = axes.replace("Y", "").replace("X", "")
    if len(extra) <= 1 and (not strict or extra in ("", *_CHANNEL_LETTERS)):
        return extra
    if extra in ("CS", "SC"):
        return extra
    sizes = ", ".join(f"{a}={shape[axes.index(a)]}" for a in extra)
    raise FileFormatError(
        f"{source}: has axes {axes!r} ({sizes}); hyperplex reads 2-D multichannel images. "
        f"Pick one plane with select={_select_hint(extra)} (any axis but the channel one)."
    )


def _select_hint(extra: str) -> str:
    """``{'Q': 0}``: the file's own non-channel axes (a channel letter kept when the file has one)."""
    chan = next((a for a in ("C", "S", *_CHANNEL_LETTERS) if a in extra), "")
    return "{" + ", ".join(f"'{a}': 0" for a in extra if a != chan) + "}"


def to_cyx(
    array: Any, axes: str, *, source: str, select: Mapping[str, int] | None = None, strict: bool = True
) -> tuple[da.Array, str]:
    """Reorder a lazy array to ``(C, Y, X)``, without reading it.

    Size-1 axes are dropped, ``select`` picks single planes along other axes, and the one remaining
    non-spatial axis becomes the channel axis (a ``C`` and an ``S`` axis are merged, ``C`` major).
    An image without a channel axis gets one of length 1.

    Args:
        array: The array (dask, zarr or numpy), shaped as ``axes`` says.
        axes: One letter per dimension (tifffile's ``series.axes`` or NGFF axis names, any case).
        source: File name for error messages.
        select: Fixed indices for extra axes, e.g. ``{"Z": 3}``.
        strict: If True, only channel-like letters (C, S, ...) may become channels; a lone Z or T axis
            then needs ``select``. Plain TIFF stacks pass False: their pages are the channels.

    Returns:
        The ``(C, Y, X)`` dask array and the axis letters that became channels (``""`` if none).

    Raises:
        FileFormatError: If the layout has no Y and X axes, or more than one non-spatial axis remains.
        InvalidParameterError: If ``select`` names a missing axis or an out-of-range index.
    """
    axes = axes.upper()
    arr = array if isinstance(array, da.Array) else da.asarray(array)
    if len(axes) != arr.ndim or "Y" not in axes or "X" not in axes:
        raise FileFormatError(f"{source}: axes {axes!r} do not describe a {arr.ndim}-D image with Y and X.")
    arr, axes = _select(arr, axes, select or {}, source)
    arr, axes = _drop_singletons(arr, axes)
    chan = _channel_axes(axes, strict, source, arr.shape)
    order = [axes.index(a) for a in chan] + [axes.index("Y"), axes.index("X")]
    arr = arr.transpose(order)
    if len(chan) == 2:
        arr = arr.reshape((arr.shape[0] * arr.shape[1], *arr.shape[2:]))
    elif not chan:
        arr = arr[None]
    return arr, chan
