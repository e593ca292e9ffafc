"""numba, when installed: how Mag1c's compiled CPU kernels are declared, cached and run.

Kernels compile on their first call and are cached on disk: next to their module (``__pycache__``), or in
the user's cache directory where the install is read-only (numba's locators; ``NUMBA_CACHE_DIR``
overrides both); where no location is writable they compile in memory, each process. Two changes to
numba's own cache (:class:`KernelCache`):

* a cached kernel is valid only for the exact source of its module *and of every module it imports from
  its package* (:func:`source_files`): numba checks the kernel's own file only, so an edited helper that a
  kernel inlines, or an edited constant, would otherwise keep the stale machine code;
* loading a cached kernel initialises only numba's runtime (the allocator the kernels call), not every
  typing and lowering registry numba has (which numba does before every cache load, and which imports
  scipy.linalg): those serve compiling, and a compile still loads them. This is most of what made the
  first Mag1c call in a process slower than the next ones.

:func:`warm_up` loads (or compiles) every kernel without running Mag1c: e.g. once after installing.
:func:`preload` loads the cached kernels in a background thread while the caller prepares its inputs.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import re
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from hyperplex.common.threads import compute_threads

__all__ = [
    "jitable",
    "kernel",
    "compute_threads",
    "kernel_cache_class",
    "load_cached",
    "match_threads",
    "numba_or_none",
    "preload",
    "run_kernel",
    "source_files",
    "warm_up",
]

#: numba's default 'workqueue' threading layer must not be entered by two threads at once (napari workers,
#: threaded dask): compiled kernels run one at a time in a process.
_KERNEL_LOCK = threading.Lock()

#: fastmath flags of the kernels: reassociation and contraction (vectorised sums, FMA), nothing that assumes
#: finite values.
FASTMATH = {"reassoc", "contract"}

#: ``from <module> import`` at the start of a line.
_IMPORT = re.compile(r"^from\s+([\w.]+)\s+import", re.MULTILINE)


@functools.cache
def numba_or_none() -> ModuleType | None:
    """The numba module, or None when it is not installed (the torch paths are used then)."""
    try:
        import numba
    except ImportError:
        return None
    return numba


def match_threads() -> None:
    """Use as many numba threads as torch does where it is loaded (benchmarks compare at equal thread counts)."""
    numba = numba_or_none()
    if numba is not None:
        numba.set_num_threads(max(1, min(compute_threads(), numba.config.NUMBA_NUM_THREADS)))


def run_kernel(kernel: Callable[..., Any], *args: Any) -> Any:
    """Call a parallel compiled kernel with :func:`compute_threads` threads, one kernel at a time per process.

    A :func:`preload` still running is waited for first: a call that raced it would load the kernel itself
    through numba's compile path (its extension scan and compiler lock), which costs more than the wait.
    """
    thread = _PRELOAD_THREAD
    if thread is not None and thread is not threading.current_thread():
        thread.join()
    with _KERNEL_LOCK:
        match_threads()
        return kernel(*args)


def kernel(parallel: bool = False, nogil: bool = False) -> Callable[[Callable[..., Any]], Any]:
    """Decorator: compile with numba (needs it), cached on disk (:class:`KernelCache`) where writable.

    Where no cache location is writable (a read-only install and no writable home) the kernel is compiled
    in memory, each process.

    Args:
        parallel: Compile ``numba.prange`` loops as parallel loops.
        nogil: Release the GIL while running (a serial kernel that Python threads run side by side).
    """
    numba = numba_or_none()

    def decorate(function: Callable[..., Any]) -> Any:
        dispatcher = numba.njit(parallel=parallel, nogil=nogil, fastmath=FASTMATH, error_model="numpy")(function)
        try:
            dispatcher._cache = kernel_cache_class()(dispatcher.py_func)  # what enable_caching() sets
        except RuntimeError:  # "cannot cache function ...: no locator available"
            pass
        return dispatcher

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


def source_files(module: str) -> list[Path]:
    """The source files a kernel of ``module`` depends on: its own and those it imports from, transitively.

    Only modules under the package two levels up count (``hyperplex.geo.methane`` for the Mag1c
    kernels), found by their ``from ... import`` lines; they must be imported already.
    """
    root = module.rsplit(".", 2)[0] + "."
    seen: dict[str, Path] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(name)
        if path is None:
            continue
        seen[name] = path
        todo.extend(m for m in _IMPORT.findall(path.read_text(encoding="utf-8")) if m.startswith(root))
    return sorted(set(seen.values()))


def _module_file(name: str) -> Path | None:
    """The ``.py`` file of an imported module (or of a package's ``__init__``), else None."""
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None)
    return Path(file) if file and file.endswith(".py") else None


@functools.cache  # once per module: its kernels are declared together (its imports already done)
def _sources_digest(module: str) -> bytes:
    digest = hashlib.sha256()
    for path in source_files(module):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.digest()


class _StampedLocator:
    """A numba cache locator whose source stamp covers every source file of the kernel."""

    def __init__(self, locator: Any, stamp: bytes) -> None:
        self._locator = locator
        self._stamp = stamp

    def get_source_stamp(self) -> bytes:
        """The digest of the kernel's source files (numba: the kernel's own file)."""
        return self._stamp

    def __getattr__(self, name: str) -> Any:
        return getattr(self._locator, name)


@functools.cache
def kernel_cache_class() -> type:
    """``KernelCache``: numba's per-function disk cache, stamped by all sources, loading without a full refresh.

    Built on first use, as numba is optional.
    """
    from numba.core.caching import CompileResultCacheImpl, FunctionCache
    from numba.core.runtime import nrt

    class KernelCacheImpl(CompileResultCacheImpl):
        def __init__(self, py_func: Callable[..., Any]) -> None:
            super().__init__(py_func)
            self._locator = _StampedLocator(self._locator, _sources_digest(py_func.__module__))

    class KernelCache(FunctionCache):
        _impl_class = KernelCacheImpl

        def load_overload(self, sig: Any, target_context: Any) -> Any:
            # numba refreshes every registry here; cached machine code needs only the runtime (NRT) symbols
            nrt.rtsys.initialize(target_context)
            with self._guard_against_spurious_io_errors():
                return self._load_overload(sig, target_context)

    return KernelCache


def warm_up() -> None:
    """Load (or compile, the first time: about a minute) the compiled kernels, Mag1c's for every input layout.

    Mag1c on two tiny cubes, one stored band-first and one band-last (as EMIT granules are): kernels are
    specialised by the memory layout of their arrays. Run it once after installing, so that no user's first
    call compiles.
    """
    from hyperplex.common.progress import quiet
    from hyperplex.geo.detect.block_kernel import compile_block_kernel
    from hyperplex.geo.image_ops import compile_kernels
    from hyperplex.geo.methane.mag1c_filter.api import mag1c

    compile_block_kernel()  # the detection pipeline's read pass
    compile_kernels()  # and its smoothing and plume labelling

    rng = np.random.default_rng(0)
    wavelengths = np.linspace(2130.0, 2480.0, 8)
    band_last = (1.0 + 0.01 * rng.standard_normal((24, 4, wavelengths.size))).astype(np.float32)
    with quiet():  # no progress bars for these tiny calls
        for cube in (np.ascontiguousarray(band_last.transpose(2, 0, 1)), band_last.transpose(2, 0, 1)):
            mag1c(cube, wavelengths, np.full(wavelengths.size, 8.7), num_iter=2, device="cpu")


def preload(kernels: Callable[[], Iterable[Any]]) -> threading.Thread | None:
    """Load every cached overload of some kernels in a background thread (once per process).

    A cached kernel takes tenths of a second to load (unpickling, linking its machine code); started
    before a filter prepares its inputs (band selection, target, statistics, reading), the load runs
    alongside. Nothing is compiled here: only signatures found in the disk cache are loaded; a kernel call
    waits for the thread (:func:`run_kernel`), and a signature it did not find is loaded or compiled by the
    call as usual. Any failure only loses the head start.

    Args:
        kernels: Returns the kernel dispatchers (called in the thread: importing them imports numba).

    Returns:
        The started thread, or None when numba is missing or a preload was already started.
    """
    global _PRELOAD_THREAD
    with _PRELOAD_LOCK:
        if _PRELOAD_THREAD is not None or importlib.util.find_spec("numba") is None:
            return None
        _PRELOAD_THREAD = threading.Thread(target=_load_all, args=(kernels,), name="hyperplex-kernel-load")
        _PRELOAD_THREAD.start()
        return _PRELOAD_THREAD


#: Guards the start of :func:`preload` (it runs once per process).
_PRELOAD_LOCK = threading.Lock()
#: The preload thread, once started (joined by :func:`run_kernel` before a kernel call).
_PRELOAD_THREAD: threading.Thread | None = None


def _load_all(kernels: Callable[[], Iterable[Any]]) -> None:
    try:
        for dispatcher in kernels():
            load_cached(dispatcher)
        numba_or_none().get_num_threads()  # starts the parallel thread pool, as a first parallel call would
    except Exception:  # an optimisation only: the first call loads or compiles as usual
        return


def load_cached(dispatcher: Any) -> None:
    """Load a kernel's disk-cached overloads now, in this thread, without compiling anything.

    A first call that finds its overload loaded skips numba's compile path (its one-time extension scan and
    the compiler lock: tenths of a second); a signature not in the cache still compiles on its call.
    """
    for signature in cached_signatures(dispatcher):
        _load_cached(dispatcher, signature)


def cached_signatures(dispatcher: Any) -> list[tuple]:
    """Signatures of a kernel's valid disk-cache entries for this machine (empty when none or uncached)."""
    cache = getattr(dispatcher, "_cache", None)
    cache_file = getattr(cache, "_cache_file", None)
    if cache_file is None:
        return []
    magic = dispatcher.targetctx.codegen().magic_tuple()
    return [key[0] for key in cache_file._load_index() if key[1] == magic]


def _load_cached(dispatcher: Any, signature: tuple) -> None:
    """What ``Dispatcher.compile`` does on a cache hit, without compiling on a miss."""
    from numba.core.compiler_lock import global_compiler_lock

    with global_compiler_lock:
        if tuple(signature) in dispatcher.overloads:
            return
        result = dispatcher._cache.load_overload(signature, dispatcher.targetctx)
        if result is None:
            return
        dispatcher.targetctx.insert_user_function(result.entry_point, result.fndesc, [result.library])
        dispatcher.add_overload(result)
