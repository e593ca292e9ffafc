"""Chunks decoded by hyperplex (libdeflate, shuffle) equal HDF5's own decoding, in any thread."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import h5py
import numpy as np
import pytest

from hyperplex.geo.io.hdf5_chunks import DEFLATE, SHUFFLE, StoredChunks, byte_planes, decode_chunk, unshuffle_into

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


def _stored_chunks(path, **kwargs):
    f = h5py.File(path, "r")
    return f, StoredChunks(path, f["x"], **kwargs)


@pytest.mark.parametrize("direct", [True, False], ids=["pread", "h5py"])
def test_stored_chunks_are_read_as_hdf5_stores_them(tmp_path, direct):
    """Every chunk as ``read_direct_chunk`` gives it; a chunk never written is None (the fill value)."""
    path = tmp_path / "partial.h5"
    with h5py.File(path, "w") as f:
        x = f.create_dataset("x", shape=(16, 12, 5), dtype="f4", chunks=CHUNKS, compression="gzip", fillvalue=-1)
        x[:8] = np.arange(8 * 12 * 5, dtype="f4").reshape(8, 12, 5)  # the chunks of lines 8:16 stay unwritten
    f, chunks = _stored_chunks(path, direct=direct)
    with f:
        for c in (0, 6):
            mask, data = chunks.read((0, c, 0))
            assert (mask, data) == f["x"].id.read_direct_chunk((0, c, 0))
            assert chunks.read((8, c, 0)) is None
    chunks.close()


def test_a_file_cut_inside_a_chunk_raises_eof(tmp_path):
    path = tmp_path / "cut.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset(
            "x", data=np.random.default_rng(0).random((16, 12, 5), "f4"), chunks=CHUNKS, compression="gzip"
        )
    f, chunks = _stored_chunks(path)
    with f:
        infos = [f["x"].id.get_chunk_info(i) for i in range(f["x"].id.get_num_chunks())]
        last = max(infos, key=lambda info: info.byte_offset)  # the chunk stored last
        os.truncate(path, last.byte_offset + last.size // 2)
        with pytest.raises(EOFError, match="ends early"):
            chunks.read(last.chunk_offset)
    chunks.close()


def test_byte_planes_give_any_bands_as_a_full_unshuffle_would(stored):
    """Shuffled chunks: the bands taken from the byte planes equal the decoded chunk's; others: no planes."""
    filters, raw, values = stored
    mask, data = raw[(8, 6)]
    size = int(np.prod(CHUNKS)) * 4
    planes = byte_planes(data, mask, filters, 4, size, threading.local())
    if filters[0] != SHUFFLE:
        assert planes is None
        return
    dest = np.full((8, 6, 4), np.nan, np.float32)  # bands 0, 2, 3 and 4 of the chunk into 4 slots
    unshuffle_into(planes.reshape(4, *CHUNKS), [(0, 0, 1), (2, 1, 3)], dest.view(np.uint8).reshape(8, 6, 4, 4))
    np.testing.assert_array_equal(dest, values[8:, 6:][..., [0, 2, 3, 4]])
