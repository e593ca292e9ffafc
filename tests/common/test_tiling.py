from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr
import zarr

from hyperplex.common import InvalidParameterError, Stitcher, Tiler, apply_tiled, iter_tiles


def _roundtrip(data, tile, overlap, **kw):
    return apply_tiled(lambda t, w: t, data, tile, overlap, dtype=np.asarray(data[:1, :1, :1]).dtype, **kw)


@pytest.mark.parametrize(("shape", "tile", "overlap"), [
    ((3, 50, 37), 16, 0), ((3, 50, 37), 16, 5), ((2, 64, 64), 64, 10), ((1, 10, 100), (7, 33), (3, 9)),
    ((4, 5, 5), 16, 4), ((2, 31, 29), 8, 7),
])  # fmt: skip
def test_identity_roundtrip_is_exact(shape, tile, overlap):
    data = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    out = _roundtrip(data, tile, overlap)
    np.testing.assert_array_equal(out, data)


def test_every_pixel_covered_and_tiles_full_size():
    tiler = Tiler((100, 77), 32, 8)
    cover = np.zeros((100, 77), int)
    for w in tiler:
        assert (w.height, w.width) == (32, 32)
        cover[w.slices] += 1
    assert cover.min() >= 1


@pytest.mark.parametrize("backend", ["numpy", "memmap", "zarr", "dask", "xarray"])
def test_backends_give_same_tiles(backend, tmp_path):
    data = np.arange(3 * 40 * 30, dtype=np.float32).reshape(3, 40, 30)
    if backend == "memmap":
        arr = np.lib.format.open_memmap(tmp_path / "a.npy", mode="w+", dtype=np.float32, shape=data.shape)
        arr[:] = data
    elif backend == "zarr":
        arr = zarr.create_array(tmp_path / "a.zarr", shape=data.shape, chunks=(3, 16, 16), dtype="f4")
        arr[:] = data
    elif backend == "dask":
        arr = da.from_array(data, chunks=(3, 13, 13))
    elif backend == "xarray":
        arr = xr.DataArray(data, dims=("band", "y", "x"))
    else:
        arr = data
    np.testing.assert_array_equal(_roundtrip(arr, 16, 4), data)


def test_channel_axis_last():
    data = np.random.default_rng(1).random((20, 24, 3)).astype(np.float32)
    out = _roundtrip(data, 8, 2, channel_axis=-1)
    np.testing.assert_array_equal(out, np.moveaxis(data, -1, 0))


def test_blending_averages_overlaps_with_positive_weights():
    tiler = Tiler((20, 20), 12, 4)
    st = Stitcher(tiler, 1)
    for i, w in enumerate(tiler):
        st.add(w, np.full((1, w.height, w.width), float(i)))
    out = st.result()
    assert out.min() >= 0 and out.max() <= len(tiler) - 1
    assert np.all(np.isfinite(out))
    # pixels covered by one tile keep that tile's value
    assert out[0, 0, 0] == 0 and out[0, -1, -1] == len(tiler) - 1


def test_changed_channel_count_and_bad_block_shape():
    data = np.ones((5, 30, 30), np.float32)
    out = apply_tiled(lambda t, w: t.sum(0, keepdims=True), data, 10, 3, out_channels=1)
    np.testing.assert_allclose(out, 5.0)
    st = Stitcher(Tiler((30, 30), 10), 1)
    with pytest.raises(InvalidParameterError, match="Tile output must be"):
        st.add(next(iter(Tiler((30, 30), 10))), np.ones((2, 10, 10)))


@pytest.mark.parametrize(("tile", "overlap"), [(0, 0), (8, 8), (8, -1), ("a", 0)])
def test_bad_tiling_parameters(tile, overlap):
    with pytest.raises(InvalidParameterError):
        Tiler((10, 10), tile, overlap)


def test_iter_tiles_checks_shape():
    with pytest.raises(InvalidParameterError, match="Tiler was built for"):
        list(iter_tiles(np.zeros((1, 5, 5)), Tiler((6, 6), 3)))
