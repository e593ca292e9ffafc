"""Large buffers whose pages are written in a background thread before the code that needs them runs.

The first write to each page of a fresh allocation makes the kernel find and zero a page and, on a virtual
machine, often makes the host back it too: in a fresh process on the benchmark machine, writing a new
297 MB array took 0.46 s against 0.03 s to write it again. A command that knows which large buffers it will
allocate (the methane pipeline: its filter cube and Mag1c's resident cube) can :func:`reserve` them at
start-up, so that their pages are written on the otherwise idle second core while the command's modules
import (one core, most of a second); :func:`empty` then hands each one out.

Only callers that ask for a reserved size through :func:`empty` get one, a buffer whose writing has not
started is left to the caller (allocating it then costs the same), and :func:`release` drops what was not
handed out. Nothing here changes results: :func:`empty` returns uninitialised memory, as ``np.empty`` does.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

__all__ = ["empty", "release", "reserve", "reserved"]

#: Bytes between the writes that fault a buffer's pages in (the smallest page size).
PAGE_BYTES = 4096


@dataclass(eq=False)
class _Buffer:
    """One reserved buffer: ``waiting`` for the thread, ``writing`` its pages, then ``ready``."""

    nbytes: int
    state: str = "waiting"
    array: np.ndarray | None = None
    done: threading.Event = field(default_factory=threading.Event)


_lock = threading.Lock()
_buffers: list[_Buffer] = []


def reserve(sizes: Sequence[int]) -> threading.Thread:
    """Write the pages of new buffers of these byte sizes, one after the other, in a daemon thread.

    Args:
        sizes: Bytes of each buffer, in the order the command will need them.

    Returns:
        The started thread (joining it is optional: :func:`empty` waits for the buffer it hands out).
    """
    new = [_Buffer(int(n)) for n in sizes if int(n) > 0]
    with _lock:
        _buffers.extend(new)
    thread = threading.Thread(target=_write_pages, args=(new,), name="hyperplex-warm-memory", daemon=True)
    thread.start()
    return thread


def _write_pages(buffers: list[_Buffer]) -> None:
    """The thread: allocate each buffer still wanted and write one byte per page (numpy releases the GIL)."""
    for buf in buffers:
        with _lock:
            if buf.state != "waiting":  # handed out before its turn, or released
                continue
            buf.state = "writing"
        try:
            array: np.ndarray | None = np.empty(buf.nbytes, np.uint8)
            array[::PAGE_BYTES] = 0
        except MemoryError:  # then the caller allocates it, and gets the error itself if there is one
            array = None
        with _lock:
            buf.array, buf.state = (array if buf in _buffers or buf.state == "claimed" else None), "ready"
        buf.done.set()


def empty(shape: int | Sequence[int], dtype: DTypeLike = np.float64) -> np.ndarray:
    """``np.empty(shape, dtype)``, from a reserved buffer of exactly that many bytes when there is one.

    Waits while the thread is writing that buffer's pages; a reserved buffer whose turn has not come yet
    is dropped (the thread skips it) and a fresh array returned.
    """
    dt = np.dtype(dtype)
    dims = tuple(int(s) for s in np.ravel(shape))
    nbytes = int(np.prod(dims, dtype=np.int64)) * dt.itemsize
    buf = _claim(nbytes)
    if buf is not None:
        buf.done.wait()
        array, buf.array = buf.array, None
        if array is not None:
            return array.view(dt).reshape(dims)
    return np.empty(dims, dt)


def _claim(nbytes: int) -> _Buffer | None:
    """Take the first reserved buffer of ``nbytes`` off the list; None if there is none or it is still waiting."""
    with _lock:
        for i, buf in enumerate(_buffers):
            if buf.nbytes == nbytes:
                del _buffers[i]
                if buf.state == "waiting":
                    buf.state = "dropped"
                    return None
                buf.state = "claimed" if buf.state == "writing" else buf.state
                return buf
    return None


def reserved() -> list[int]:
    """Byte sizes of the reserved buffers not handed out yet."""
    with _lock:
        return [buf.nbytes for buf in _buffers]


def release() -> int:
    """Drop the reserved buffers not handed out (their memory is freed once the thread is done with them).

    Returns:
        How many were dropped.
    """
    with _lock:
        dropped = len(_buffers)
        for buf in _buffers:
            buf.array = None
            if buf.state == "waiting":
                buf.state = "dropped"
        _buffers.clear()
    return dropped
