"""Uniform access to the array types the data model accepts: numpy, memmap, zarr, dask, xarray."""

from __future__ import annotations

from typing import Any

import numpy as np

from hyperplex.common.errors import InvalidParameterError

__all__ = ["as_channel_first", "index_slice", "is_lazy", "materialize", "run_spans", "runs", "unwrap"]


def unwrap(array: Any) -> Any:
    """Return the raw backing array of an xarray object (lazy arrays stay lazy); else the input."""
    if hasattr(array, "dims") and hasattr(array, "variable"):
        return array.data
    return array


def is_lazy(array: Any) -> bool:
    """True for arrays that compute or read on access (dask, zarr, h5py), not numpy/memmap."""
    return not isinstance(unwrap(array), np.ndarray)


def materialize(block: Any, dtype: Any | None = None) -> np.ndarray:
    """Read or compute ``block`` into a numpy array (dask ``compute``; zarr/h5py slicing)."""
    block = unwrap(block)
    if hasattr(block, "compute") and not isinstance(block, np.ndarray):
        block = block.compute()
    out = np.asarray(block)
    return out if dtype is None else out.astype(dtype, copy=False)


def as_channel_first(array: Any, channel_axis: int = 0, *, name: str = "array") -> Any:
    """View a 3-D array as ``(C, H, W)`` without reading it.

    numpy, memmap and dask arrays are transposed lazily; zarr and h5py arrays are wrapped in dask
    first when their channel axis is not already the first.

    Args:
        array: 3-D array in any supported type (xarray is unwrapped).
        channel_axis: Axis holding the channels.
        name: Parameter name for error messages.

    Returns:
        An array-like with channels first, sliceable as ``a[:, rows, cols]``.

    Raises:
        InvalidParameterError: If the array is not 3-D or the axis is out of range.
    """
    data = unwrap(array)
    ndim = len(data.shape)
    if ndim != 3:
        raise InvalidParameterError(f"`{name}` must be 3-D (channels, rows, cols); got shape {tuple(data.shape)}.")
    if not -3 <= channel_axis < 3:
        raise InvalidParameterError(f"`channel_axis` must be in [-3, 2]; got {channel_axis}.")
    axis = channel_axis % 3
    if axis == 0:
        return data
    if isinstance(data, np.ndarray) or hasattr(data, "dask"):
        return np.moveaxis(data, axis, 0) if isinstance(data, np.ndarray) else data.transpose(_order(axis))
    import dask.array as da

    return da.from_array(data, chunks="auto").transpose(_order(axis))


def _order(axis: int) -> tuple[int, int, int]:
    rest = [i for i in range(3) if i != axis]
    return (axis, rest[0], rest[1])


def runs(idx: np.ndarray, max_gap: int = 1) -> list[np.ndarray]:
    """Sorted indices split where two neighbours differ by more than ``max_gap`` (1: runs of consecutive ones)."""
    idx = np.asarray(idx, dtype=int)
    return np.split(idx, np.flatnonzero(np.diff(idx) > max_gap) + 1) if idx.size else []


def run_spans(idx: np.ndarray) -> list[tuple[int, int, int]]:
    """``(first index, position in idx, length)`` of each run of consecutive sorted ``idx``.

    E.g. where a gather of ``idx`` is done run by run: run ``k`` copies ``length`` items from ``first`` to
    ``position``.
    """
    out, at = [], 0
    for run in runs(idx):
        out.append((int(run[0]), at, run.size))
        at += run.size
    return out


def index_slice(idx: np.ndarray) -> slice | np.ndarray:
    """A run of consecutive indices as a slice (indexing with it is a view, not a gather copy); others unchanged."""
    return slice(int(idx[0]), int(idx[-1]) + 1) if idx.size and idx[-1] - idx[0] + 1 == idx.size else idx
