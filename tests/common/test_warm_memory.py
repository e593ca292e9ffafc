"""Reserved buffers: handed out once, only at their exact size, pages written; the rest allocated as usual."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from hyperplex.common import warm_memory
from hyperplex.common.warm_memory import PAGE_BYTES, empty, release, reserve, reserved


@pytest.fixture(autouse=True)
def _clean_pool():
    release()
    yield
    release()


def _root(array: np.ndarray) -> np.ndarray:
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def _pooled(array: np.ndarray, nbytes: int) -> bool:
    root = _root(array)
    return root is not array and root.dtype == np.uint8 and root.ndim == 1 and root.nbytes == nbytes


def test_without_a_reservation_empty_is_numpy_empty():
    a = empty((3, 4), np.float32)
    assert a.shape == (3, 4) and a.dtype == np.float32 and a.flags.c_contiguous and a.base is None
    assert empty(5).shape == (5,) and empty(5).dtype == np.float64


def test_a_reserved_buffer_is_handed_out_once_with_its_pages_written():
    shape, nbytes = (64, 100, 7), 64 * 100 * 7 * 4
    reserve([nbytes]).join()
    assert reserved() == [nbytes]
    a = empty(shape, np.float32)
    assert a.shape == shape and a.dtype == np.float32 and a.flags.c_contiguous and a.flags.writeable
    assert _pooled(a, nbytes)
    assert not _root(a)[::PAGE_BYTES].any()  # one byte per page written by the thread
    assert reserved() == []
    assert not _pooled(empty(shape, np.float32), nbytes)  # the next one is an ordinary allocation
    a[...] = 1.5
    assert (a == 1.5).all()


def test_only_the_exact_size_takes_a_reserved_buffer_and_release_drops_the_rest():
    nbytes = 1 << 20
    reserve([nbytes]).join()
    assert not _pooled(empty(nbytes // 8 + 1), nbytes)
    assert not _pooled(empty(nbytes // 8 - 1), nbytes)
    assert reserved() == [nbytes]
    assert release() == 1 and reserved() == []
    assert not _pooled(empty(nbytes // 8), nbytes)


def test_a_buffer_whose_turn_has_not_come_is_left_to_the_caller(monkeypatch):
    gate, original = threading.Event(), warm_memory._write_pages
    written: list[int] = []

    def gated(buffers):
        gate.wait(10)
        original(buffers)
        written.extend(b.nbytes for b in buffers if b.array is not None)

    monkeypatch.setattr(warm_memory, "_write_pages", gated)
    thread = reserve([4096 * 10])
    got: list[np.ndarray] = []
    caller = threading.Thread(target=lambda: got.append(empty(4096 * 10, np.uint8)))
    caller.start()
    caller.join(5)
    assert not caller.is_alive(), "empty() waited for a buffer the thread had not started"
    assert not _pooled(got[0], 4096 * 10) and reserved() == []
    gate.set()
    thread.join(10)
    assert written == []  # the thread skipped it


def test_concurrent_callers_never_share_a_buffer():
    nbytes = 8 * 1000 * 50
    reserve([nbytes, nbytes]).join()
    results: list[np.ndarray] = []
    lock = threading.Lock()

    def take():
        a = empty((1000, 50), np.float64)
        with lock:
            results.append(a)

    threads = [threading.Thread(target=take) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pooled = [_root(a) for a in results if _pooled(a, nbytes)]
    assert len(pooled) == 2 and pooled[0] is not pooled[1]
    assert reserved() == []
