"""The eager GLT gather (against a direct per-cell loop) and the COG writer's layout, overviews and units."""

from __future__ import annotations

import numpy as np
import pytest

from hyperplex.common.errors import InvalidParameterError
from hyperplex.geo.detect.outputs import write_cog
from hyperplex.geo.ortho import apply_glt, glt_index


def _reference(data: np.ndarray, gx: np.ndarray, gy: np.ndarray, fill: float) -> np.ndarray:
    """apply_glt's definition, cell by cell: |glt| is 1-based, 0 in either coordinate = no data."""
    out = np.full(data.shape[:-2] + gx.shape, fill, dtype=np.result_type(data.dtype, np.min_scalar_type(fill)))
    for (i, j), x in np.ndenumerate(gx):
        y = gy[i, j]
        if x != 0 and y != 0:
            out[..., i, j] = data[..., abs(y) - 1, abs(x) - 1]
    return out


def _glt(rng: np.random.Generator, lines: int, samples: int, shape: tuple[int, int], dtype) -> tuple:
    gx = rng.integers(1, samples + 1, shape) * rng.choice([1, -1], shape)  # negative: repeated pixels
    gy = rng.integers(1, lines + 1, shape) * rng.choice([1, -1], shape)
    gx[rng.random(shape) < 0.2] = 0  # no data in one coordinate only still means no data
    gy[rng.random(shape) < 0.2] = 0
    return gx.astype(dtype), gy.astype(dtype)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize(
    ("data_dtype", "fill", "lead"),
    [(np.float32, np.nan, ()), (np.uint16, 0, ()), (np.float32, np.nan, (3,)), (np.uint8, -1, ())],
)
def test_apply_glt_equals_the_cell_by_cell_definition(dtype, data_dtype, fill, lead):
    rng = np.random.default_rng(3)
    data = (rng.random((*lead, 13, 11)) * 200).astype(data_dtype)
    gx, gy = _glt(rng, 13, 11, (17, 19), dtype)
    out = apply_glt(data, gx, gy, fill=fill)
    ref = _reference(data, gx, gy, fill)
    assert out.dtype == ref.dtype and out.shape == ref.shape
    np.testing.assert_array_equal(out, ref)


def test_apply_glt_without_valid_cells_and_out_of_range():
    data = np.ones((4, 5), np.float32)
    empty = apply_glt(data, np.zeros((2, 3), np.int32), np.zeros((2, 3), np.int32))
    assert empty.shape == (2, 3) and np.isnan(empty).all()
    with pytest.raises(InvalidParameterError, match="line 5 / sample 2"):
        apply_glt(data, np.array([[2]]), np.array([[5]]))
    with pytest.raises(InvalidParameterError, match="sample 6"):
        apply_glt(data, np.array([[6, 0]]), np.array([[1, 9]]))  # (0, 9) has no data: only x = 6 is out
    index, valid = glt_index(np.array([[0, -2]]), np.array([[3, 4]]), 4, 5)
    assert valid.tolist() == [[False, True]] and index.tolist() == [0, 3 * 5 + 1]


def test_write_cog_units_overviews_and_layout(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from affine import Affine

    rng = np.random.default_rng(0)
    shape = (700, 600)
    enh = np.where(rng.random(shape) < 0.3, rng.exponential(200, shape), 0).astype(np.float32)
    enh[:, :50] = np.nan
    ids = np.zeros(shape, np.uint16)
    ids[100:300, 100:400] = 7
    ids[400:420, 10:590] = 3
    where = {"crs": "EPSG:4326", "transform": Affine(0.0005, 0, 10, 0, -0.0005, 50)}
    tags = {"method": "mag1c", "units": "ppm·m"}
    write_cog(tmp_path / "e.tif", enh, nodata=np.nan, description="CH4 enhancement (ppm·m)", tags=tags, **where)
    write_cog(tmp_path / "p.tif", ids, nodata=0, description="plume id (0 = none)", tags=tags, **where)
    with rasterio.open(tmp_path / "e.tif") as src:
        assert src.units == ("ppm·m",) and src.tags()["method"] == "mag1c"
        assert src.block_shapes == [(256, 256)] and src.overviews(1) and src.compression.name == "deflate"
        np.testing.assert_array_equal(src.read(1), enh)
    with rasterio.open(tmp_path / "p.tif") as src:
        assert src.units in ((None,), ("",))  # ids have no units
        np.testing.assert_array_equal(src.read(1), ids)
        level = src.overviews(1)[0]
        small = src.read(1, out_shape=(shape[0] // level, shape[1] // level))
        assert set(np.unique(small)) <= {0, 3, 7}  # nearest: no averaged, made-up ids
