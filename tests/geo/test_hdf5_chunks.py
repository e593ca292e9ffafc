"""Chunks decoded by hyperplex (libdeflate, shuffle) equal HDF5's own decoding, in any thread."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import h5py
import numpy as np
import pytest

from hyperplex.geo.io.hdf5_chunks import DEFLATE, SHUFFLE, decode_chunk

CHUNKS = (8, 6, 5)


@pytest.fixture(scope="module", params=[(True, 4), (False, 9), (True, None)], ids=["shuffle+gzip", "gzip", "shuffle"])
def stored(request, tmp_path_factory):
    """A float32 (16, 12, 5) dataset in 8 x 6 x 5 chunks with the parametrised filters, and its values."""
    shuffle, level = request.param
    values = np.random.default_rng(3).normal(100.0, 5.0, (16, 12, 5)).astype(np.float32)
    values[:8, :6] = 0.0  # a chunk that compresses very well
    path = tmp_path_factory.mktemp("chunks") / "data.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=values, chunks=CHUNKS, shuffle=shuffle, compression="gzip" if level else None,
                         compression_opts=level)  # fmt: skip
    with h5py.File(path, "r") as f:
        plist = f["x"].id.get_create_plist()
        filters = tuple(int(plist.get_filter(i)[0]) for i in range(plist.get_nfilters()))
        raw = {(r, c): f["x"].id.read_direct_chunk((r, c, 0)) for r in (0, 8) for c in (0, 6)}
    return filters, raw, values


def _decoded(stored, key, scratch):
    filters, raw, _ = stored
    mask, data = raw[key]
    out = decode_chunk(data, mask, filters, 4, int(np.prod(CHUNKS)) * 4, scratch)
    return out.view(np.float32).reshape(CHUNKS)


def test_decoded_chunks_equal_the_stored_values(stored):
    filters, raw, values = stored
    assert set(filters) <= {DEFLATE, SHUFFLE} and filters
    scratch = threading.local()
    for r, c in raw:
        np.testing.assert_array_equal(_decoded(stored, (r, c), scratch), values[r : r + 8, c : c + 6])


def test_each_thread_decodes_into_its_own_reused_buffers(stored):
    _, raw, values = stored
    scratch = threading.local()
    first = _decoded(stored, (0, 0), scratch)
    again = _decoded(stored, (8, 6), scratch)
    assert np.shares_memory(first, again)  # one thread: the same buffer, chunk after chunk
    np.testing.assert_array_equal(again, values[8:, 6:])
    keys = list(raw) * 8

    def copy(key):
        return key, _decoded(stored, key, scratch).copy(), threading.get_ident()

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(copy, keys))
    assert len({ident for *_, ident in results}) > 1
    for (r, c), got, _ in results:
        np.testing.assert_array_equal(got, values[r : r + 8, c : c + 6])


def test_damaged_or_wrongly_sized_chunks_raise(stored):
    filters, raw, _ = stored
    mask, data = raw[(8, 0)]
    size = int(np.prod(CHUNKS)) * 4
    if DEFLATE in filters:
        with pytest.raises(RuntimeError):
            decode_chunk(data[: len(data) // 2], mask, filters, 4, size, threading.local())
        with pytest.raises(RuntimeError):  # decodes to more than the chunk's bytes
            decode_chunk(data, mask, filters, 4, size - 4, threading.local())
    else:
        with pytest.raises(ValueError):  # not a whole number of 4-byte elements
            decode_chunk(data[:-3], mask, filters, 4, size, threading.local())
