"""Lazy reads that fail on a damaged file: the error names the file and the block, whatever library failed.

Readers open files lazily, so a corrupt compressed tile or chunk (a deflate tile of a GeoTIFF, a gzip
chunk of an HDF5/NetCDF granule, a zarr chunk) is only found when its values are computed, long after
the file was opened, and surfaces from GDAL, HDF5, zlib or numcodecs in their own words.
:func:`read_failures` turns such an error into a :class:`~hyperplex.common.errors.FileFormatError` naming
the file and the block; :func:`guarded_getter` does so inside dask tasks (the ``getitem`` of
``dask.array.from_array``, also accepted by xarray's ``from_array_kwargs``).
"""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from hyperplex.common.errors import FileFormatError, HyperplexError

__all__ = ["READ_ERRORS", "describe_block", "guarded_getter", "read_failures"]

#: What decoders raise on damaged data: HDF5 and GDAL (OSError), numcodecs/blosc/zstd (RuntimeError,
#: ValueError), zlib, a short read (EOFError), a malformed header inside a chunk (struct.error).
READ_ERRORS: tuple[type[BaseException], ...] = (OSError, RuntimeError, ValueError, EOFError, zlib.error, struct.error)


def describe_block(key: Any) -> str:
    """A short text for an index such as ``(slice(0, 16), slice(16, 32))``: ``[0:16, 16:32]``."""
    items = key if isinstance(key, tuple) else (key,)
    parts = []
    for item in items:
        if isinstance(item, slice):
            parts.append(f"{'' if item.start is None else item.start}:{'' if item.stop is None else item.stop}")
        else:
            parts.append(str(getattr(item, "tuple", item)))
    return "[" + ", ".join(parts) + "]"


@contextlib.contextmanager
def read_failures(path: str | os.PathLike[str], what: str, key: Any = None) -> Iterator[None]:
    """Report a failed read of ``what`` (e.g. ``"radiance"``) at ``key`` in ``path`` as a FileFormatError.

    HyperplexErrors and MemoryError pass unchanged; the original error stays chained (``__cause__``).
    """
    try:
        yield
    except READ_ERRORS as err:
        if isinstance(err, HyperplexError):
            raise
        block = "" if key is None else f" block {describe_block(key)}"
        raise FileFormatError(
            f"{path}: cannot read {what}{block}: the file is damaged (a corrupt or truncated compressed tile "
            f"or chunk: {type(err).__name__}: {err}). Download or export the file again."
        ) from err


def _guarded_get(path: str, what: str, array: Any, key: Any, asarray: bool = True, lock: Any = None) -> Any:
    """Dask's ``getter`` with :func:`read_failures` around it (module level: tasks pickle)."""
    from dask.array.core import getter

    with read_failures(path, what, key):
        return getter(array, key, asarray=asarray, lock=lock)


def guarded_getter(path: str | os.PathLike[str], what: str) -> Callable[..., Any]:
    """A ``getitem`` for ``dask.array.from_array`` whose read failures name ``path``, ``what`` and the block."""
    return partial(_guarded_get, str(path), what)
