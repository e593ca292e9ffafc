"""Lazily indexed xarray variables whose read errors name the file (a corrupt compressed chunk).

xarray's lazily indexed arrays (``open_dataset`` without ``chunks``) read on ``.values``; a corrupt
chunk then raises the HDF5 library's error. :func:`guarded_variable` wraps such a variable in a backend
array that reads through it and reports failures with :func:`hyperplex.common.lazyread.read_failures`.
Chunked (dask) variables get the same through :func:`hyperplex.common.lazyread.guarded_getter`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import xarray as xr
from xarray.backends import BackendArray
from xarray.core import indexing

from hyperplex.common.lazyread import read_failures

__all__ = ["GuardedArray", "guarded_variable"]


class GuardedArray(BackendArray):
    """A backend array reading through a lazily indexed (decoded) variable, its failures naming the file.

    Args:
        variable: The lazily indexed variable (nothing read yet).
        path: The file, for messages.
        what: What is read (e.g. ``"'radiance'"``), for messages.
    """

    def __init__(self, variable: xr.Variable, path: str | os.PathLike[str], what: str) -> None:
        self.variable, self.path, self.what = variable, path, what
        self.shape, self.dtype = variable.shape, variable.dtype

    def __getitem__(self, key: indexing.ExplicitIndexer) -> np.ndarray:
        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.BASIC, self._read)

    def _read(self, key: tuple[Any, ...]) -> np.ndarray:
        with read_failures(self.path, self.what, key):
            return np.asarray(self.variable[key].values)


def guarded_variable(variable: xr.Variable, path: str | os.PathLike[str], what: str) -> xr.Variable:
    """``variable`` (lazily indexed, not dask) as a lazily indexed variable whose read errors name ``path``."""
    data = indexing.LazilyIndexedArray(GuardedArray(variable, path, what))
    return xr.Variable(variable.dims, data, variable.attrs, variable.encoding)
