"""Chunk-aware EMIT reading: every stored chunk is read once, and the data equal a plain h5py read."""

from __future__ import annotations

import os
from collections import Counter

import h5py
import numpy as np
import pytest

import hyperplex.geo.io.emit as emit_module
import hyperplex.geo.io.emit_raw as emit_raw
from hyperplex.common.errors import FileFormatError, InvalidParameterError
from hyperplex.geo.detect.source import open_source, prefetch
from hyperplex.geo.io import read_emit_block
from hyperplex.geo.io.emit import EmitReader, band_spans
from hyperplex.geo.io.hdf5_chunks import StoredChunks
from hyperplex.geo.nodata import FILL_VALUE
from hyperplex.geo.synth import write_emit_scene

CHUNKS = (32, 24, 100)  # rows, columns, bands: 3 x 4 x 3 chunks on the 96 x 80 x 285 scene
BANDS = np.array([3, 4, 5, 40, 41, 150, 151, 152, 170, 260, 284])  # disjoint spans; 3-41 share band chunk 0


def _plain(path, bands: np.ndarray) -> np.ndarray:
    with h5py.File(path, "r") as f:
        cube = np.moveaxis(f["radiance"][...], -1, 0)[bands].astype(np.float32)
    cube[cube == -9999] = np.nan
    return cube


@pytest.fixture(scope="module")
def layouts(emit_small, tmp_path_factory):
    """The small scene stored three ways: contiguous, gzip+shuffle chunks, lzf chunks (decoded by h5py)."""
    scene, paths = emit_small
    out = tmp_path_factory.mktemp("emit_layouts")
    gzip = write_emit_scene(scene, out, "gzip", chunks=CHUNKS, compression=4)["radiance"]
    lzf, big = out / "lzf.nc", out / "big_endian.nc"
    with h5py.File(gzip, "r") as src, h5py.File(lzf, "w") as dst, h5py.File(big, "w") as dst_be:
        dst.create_dataset("radiance", data=src["radiance"][...], chunks=CHUNKS, compression="lzf")
        dst_be.create_dataset("radiance", data=src["radiance"][...].astype(">f4"))  # contiguous, big-endian
    return {"contiguous": paths["radiance"], "gzip": gzip, "lzf": lzf, "contiguous_be": big}


def test_writer_stores_the_requested_chunks(layouts):
    with h5py.File(layouts["gzip"], "r") as f:
        assert f["radiance"].chunks == CHUNKS and f["radiance"].compression == "gzip" and f["radiance"].shuffle
    with h5py.File(layouts["contiguous"], "r") as f:
        assert f["radiance"].chunks is None


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("lines", [32, 40, 96])
def test_each_chunk_is_read_once(layouts, monkeypatch, threads, lines):
    calls: Counter = Counter()
    real = StoredChunks.read

    def counting(chunks, offset):
        calls[offset] += 1
        return real(chunks, offset)

    monkeypatch.setattr(StoredChunks, "read", counting)
    with EmitReader(layouts["gzip"], threads=threads) as reader:
        blocks = reader.row_blocks(lines)
        got = np.concatenate([reader.read(rows, BANDS) for rows in blocks], axis=1)
    assert all(r.start % CHUNKS[0] == 0 for r in blocks) and blocks[-1].stop == 96
    expected = {(y, x, b) for y in range(0, 96, 32) for x in range(0, 80, 24) for b in (0, 100, 200)}
    assert set(calls) == expected and max(calls.values()) == 1
    np.testing.assert_array_equal(got, _plain(layouts["gzip"], BANDS))


def test_unneeded_band_chunks_are_not_read(layouts, monkeypatch):
    calls: Counter = Counter()
    real = StoredChunks.read
    monkeypatch.setattr(StoredChunks, "read", lambda chunks, o: calls.update([o]) or real(chunks, o))
    with EmitReader(layouts["gzip"]) as reader:
        reader.read(slice(0, 96), np.arange(110, 190))
    assert {b for _, _, b in calls} == {100} and len(calls) == 3 * 4


@pytest.mark.parametrize("layout", ["contiguous", "gzip", "lzf", "contiguous_be"])
def test_every_layout_equals_plain_h5py(layouts, layout):
    path = layouts[layout]
    with EmitReader(path) as reader:
        got = np.concatenate([reader.read(rows, BANDS) for rows in reader.row_blocks(50)], axis=1)
    np.testing.assert_array_equal(got, _plain(path, BANDS))
    part = read_emit_block(path, slice(10, 77), slice(140, 160))
    np.testing.assert_array_equal(part, _plain(path, np.arange(140, 160))[:, 10:77])


@pytest.mark.parametrize(("read_bytes", "lines"), [(7 * 80 * 285 * 4 + 5, 7), (1, 1)])
def test_contiguous_data_is_read_from_the_file_not_hdf5(layouts, monkeypatch, read_bytes, lines):
    """Contiguous, unfiltered radiance bypasses h5py's hyperslab reads; blocks cross several raw reads.

    Reads are whole lines (80 samples x 285 bands here): as many as fit in ``READ_BYTES``, at least one.
    """
    monkeypatch.setattr(emit_raw, "READ_BYTES", read_bytes)
    with EmitReader(layouts["contiguous_be"]) as reader:
        assert reader._raw is not None and reader._raw.lines_per_read == lines
        monkeypatch.setattr(reader, "_data", type("NoHyperslabs", (), {"name": "/radiance"})())
        got = reader.read(slice(3, 96), BANDS)
    np.testing.assert_array_equal(got, _plain(layouts["contiguous_be"], BANDS)[:, 3:96])
    with EmitReader(layouts["gzip"]) as reader:
        assert reader._raw is None


def test_without_preadv_contiguous_data_is_read_through_hdf5(layouts, monkeypatch):
    """Windows has no ``os.preadv`` (nor ``os.pread``): the reader and the detection read fall back to h5py."""
    from hyperplex.geo.detect import DetectConfig, analyze

    path = layouts["contiguous"]
    expected = analyze(open_source(path), DetectConfig()).enhancement
    monkeypatch.delattr(os, "preadv")
    monkeypatch.delattr(os, "pread")
    with EmitReader(path) as reader:
        assert reader.raw_rows is None
        got = np.concatenate([reader.read(rows, BANDS) for rows in reader.row_blocks(50)], axis=1)
    np.testing.assert_array_equal(got, _plain(path, BANDS))
    with EmitReader(layouts["gzip"]) as reader:
        np.testing.assert_array_equal(reader.read(slice(0, 96), BANDS), _plain(layouts["gzip"], BANDS))
    np.testing.assert_array_equal(analyze(open_source(path), DetectConfig()).enhancement, expected)


def test_chunked_granule_cut_while_read_names_the_file(layouts, tmp_path):
    """Chunks are read straight from the file in the decoding threads: one cut off fails by name."""
    cut = tmp_path / "cut_chunks.nc"
    cut.write_bytes(layouts["gzip"].read_bytes())
    with EmitReader(cut, threads=2) as reader:
        reader.read(slice(0, 32), BANDS)
        dsid = reader._data.id
        last = max((dsid.get_chunk_info(i) for i in range(dsid.get_num_chunks())), key=lambda info: info.byte_offset)
        os.truncate(cut, last.byte_offset + last.size // 2)  # the chunk stored last is cut
        with pytest.raises(FileFormatError, match=r"cut_chunks\.nc.*'radiance' lines 0:96.*damaged.*ends early"):
            reader.read(slice(0, 96), BANDS)


def test_granule_cut_while_read_names_the_file(layouts, tmp_path):
    """HDF5 refuses to open a truncated file; one cut after opening (a copy still running) fails by name too."""
    cut = tmp_path / "cut.nc"
    cut.write_bytes(layouts["contiguous_be"].read_bytes())
    with EmitReader(cut) as reader:
        reader.read(slice(0, 90), BANDS)
        os.truncate(cut, cut.stat().st_size - 80 * 285 * 4 * 3)  # the last three lines are gone
        with pytest.raises(FileFormatError, match=r"cut\.nc.*'radiance' lines 9[0-6]:9[0-6].*truncated"):
            reader.read(slice(90, 96), BANDS)


def test_scene_source_blocks_equal_plain_read(layouts):
    src = open_source(layouts["gzip"])
    blocks = list(src.iter_bands(BANDS, 40))
    assert [r for r, _ in blocks] == src.row_blocks(40) == [slice(0, 32), slice(32, 64), slice(64, 96)]
    np.testing.assert_array_equal(np.concatenate([b for _, b in blocks], axis=1), _plain(layouts["gzip"], BANDS))
    np.testing.assert_array_equal(src.read_rows(slice(5, 70), BANDS), _plain(layouts["gzip"], BANDS)[:, 5:70])


def test_unwritten_chunks_read_as_fill(tmp_path):
    path = tmp_path / "partial.nc"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("radiance", (40, 30, 8), "f4", chunks=(16, 16, 8), compression="gzip", fillvalue=-9999)
        ds[:16, :16] = 2.5
    with EmitReader(path, threads=2) as reader:
        block = reader.read(slice(0, 40), [1, 6])
    assert np.all(block[:, :16, :16] == 2.5) and np.isnan(block[:, 16:]).all() and np.isnan(block[:, :, 16:]).all()


@pytest.mark.parametrize("dtype", ["<f4", ">f4"])
def test_shuffled_chunks_of_either_byte_order_read_as_h5py_reads_them(tmp_path, monkeypatch, dtype):
    """Native values are unshuffled straight into the block for the bands asked; big-endian ones are decoded whole."""
    if np.dtype(dtype).isnative:  # the bands come straight from the byte planes: no whole-chunk decode
        monkeypatch.setattr(emit_module, "decode_chunk", lambda *a: pytest.fail("decoded the whole chunk"))
    path = tmp_path / f"shuffled_{dtype[0] == '>'}.nc"
    values = np.random.default_rng(5).normal(10.0, 2.0, (40, 30, 12)).astype(dtype)
    values[3, 4, 5] = FILL_VALUE
    with h5py.File(path, "w") as f:
        f.create_dataset("radiance", data=values, chunks=(16, 16, 12), compression="gzip", shuffle=True)
    bands = np.array([0, 1, 2, 5, 7, 8, 11])
    with EmitReader(path, threads=2) as reader:
        block = reader.read(slice(2, 37), bands)
    expected = values[2:37][..., bands].astype(np.float32).transpose(2, 0, 1)
    expected[expected == FILL_VALUE] = np.nan
    np.testing.assert_array_equal(block, expected)


def test_bad_band_selection_is_refused(layouts):
    with EmitReader(layouts["gzip"]) as reader, pytest.raises(InvalidParameterError, match="sorted, unique"):
        reader.read(slice(0, 8), [5, 3])


def test_band_spans_merge_only_within_a_chunk():
    assert [(lo, hi) for lo, hi, _ in band_spans(BANDS)] == [(3, 6), (40, 42), (150, 153), (170, 171), (260, 261),
                                                             (284, 285)]  # fmt: skip
    merged = band_spans(BANDS, band_chunk=100)
    assert [(lo, hi) for lo, hi, _ in merged] == [(3, 42), (150, 171), (260, 285)]
    np.testing.assert_array_equal(np.concatenate([idx for _, _, idx in merged]), BANDS)


def test_prefetch_keeps_order_and_values():
    assert list(prefetch(lambda i: np.full(2, i), range(5)))[3][1].tolist() == [3, 3]
    assert [i for i, _ in prefetch(lambda i: np.zeros(1), range(7))] == list(range(7))
    assert list(prefetch(lambda i: np.zeros(1), [])) == []
