"""numba, when installed: how Mag1c's compiled CPU kernels are declared, cached and run.

Kernels are compiled on their first call and cached on disk next to their module (numba's ``__pycache__``
locator, keyed by the module file, so moved modules just compile once again); where no cache location is
writable they compile in memory. numba's cache only checks the kernel's own file: after editing a
:func:`jitable` helper in another file, clear the ``__pycache__`` of the kernels that inline it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

import torch

__all__ = ["jitable", "kernel", "match_threads", "numba_or_none", "run_kernel"]

#: numba's default 'workqueue' threading layer must not be entered by two threads at once (napari workers,
#: threaded dask): compiled kernels run one at a time in a process.
_KERNEL_LOCK = threading.Lock()

#: fastmath flags of the kernels: reassociation and contraction (vectorised sums, FMA), nothing that assumes
#: finite values.
FASTMATH = {"reassoc", "contract"}


@functools.cache
def numba_or_none() -> ModuleType | None:
    """The numba module, or None when it is not installed (the torch paths are used then)."""
    try:
        import numba
    except ImportError:
        return None
    return numba


def match_threads() -> None:
    """Use as many numba threads as torch does (benchmarks compare at equal thread counts)."""
    numba = numba_or_none()
    if numba is not None:
        numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))


def run_kernel(kernel: Callable[..., Any], *args: Any) -> Any:
    """Call a parallel compiled kernel with torch's thread count, one kernel at a time per process."""
    with _KERNEL_LOCK:
        match_threads()
        return kernel(*args)


def kernel(parallel: bool = False) -> Callable[[Callable[..., Any]], Any]:
    """Decorator: compile with numba (needs it), cached on disk when a cache location is writable.

    numba raises at decoration time when ``cache=True`` finds no writable location (a read-only install
    and no writable home): the kernel is then compiled in memory, each process.

    Args:
        parallel: Compile ``numba.prange`` loops as parallel loops.
    """
    numba = numba_or_none()

    def decorate(function: Callable[..., Any]) -> Any:
        options = {"parallel": parallel, "fastmath": FASTMATH, "error_model": "numpy"}
        try:
            return numba.njit(cache=True, **options)(function)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            return numba.njit(cache=False, **options)(function)

    return decorate


def jitable(function: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: a plain Python function that compiled kernels may call too (numba's ``register_jitable``).

    Python callers (the torch engine) get the function unchanged; without numba it is only that.
    """
    numba = numba_or_none()
    if numba is None:
        return function
    from numba.extending import register_jitable

    return register_jitable(function)
