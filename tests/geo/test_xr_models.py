"""Models on xarray keep the grid: embeddings on the feature grid with scaled transform, predictions on the input's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import InvalidParameterError
from hyperplex.common.models import create_model
from hyperplex.common.models.inference import tiled_feature_map
from hyperplex.geo.xr_models import embed, predict


@pytest.fixture(scope="module")
def cube():
    import rioxarray  # noqa: F401
    import xarray as xr
    from affine import Affine

    rng = np.random.default_rng(0)
    wl = np.linspace(2100.0, 2450.0, 8)
    data = rng.random((8, 40, 48)).astype(np.float32)
    y, x = 3500000.0 - 30.0 * (np.arange(40) + 0.5), 500000.0 + 30.0 * (np.arange(48) + 0.5)
    lat = np.add.outer(np.linspace(32.0, 31.9, 40), np.zeros(48))
    da = xr.DataArray(data, dims=("band", "y", "x"),
                      coords={"band": wl, "wavelength": ("band", wl), "fwhm": ("band", np.full(8, 9.0)), "y": y, "x": x,
                              "lat": (("y", "x"), lat)}, attrs={"units": "uW", "title": "scene"})  # fmt: skip
    return da.rio.write_crs("EPSG:32614").rio.write_transform(Affine(30, 0, 500000, 0, -30, 3500000))


def test_embed_keeps_the_grid_at_the_feature_stride(cube):
    torch.manual_seed(0)
    model = create_model("lessvit_test")
    out = embed(model, cube, tile_size=16, overlap=0)
    s = model.feature_stride
    assert out.dims == ("feature", "y", "x") and out.shape[1:] == (-(-40 // s), -(-48 // s))
    ref = tiled_feature_map(model, cube.values, ChannelSet.from_xarray(cube), tile_size=16, overlap=0)
    np.testing.assert_allclose(out.values, ref, rtol=1e-5, atol=1e-6)
    assert out["x"].values[0] == pytest.approx(500000.0 + 30.0 * s / 2)  # centre of the first feature cell
    assert out.rio.transform().a == 30.0 * s and out.rio.crs.to_epsg() == 32614
    assert out["lat"].shape == out.shape[1:] and out.attrs["title"] == "scene" and "units" not in out.attrs


def test_predict_stays_on_the_input_grid(cube):
    torch.manual_seed(0)
    model = create_model("hypersegformer_test", channels=ChannelSet.from_xarray(cube))
    out = predict(model, cube, tile_size=32, overlap=8)
    assert out.dims[1:] == ("y", "x") and out.shape[1:] == cube.shape[1:]
    np.testing.assert_array_equal(out["x"].values, cube["x"].values)
    assert out.rio.transform() == cube.rio.transform() and np.isfinite(out.values).all()


def test_a_cube_without_three_dims_is_refused(cube):
    with pytest.raises(InvalidParameterError, match="3-D"):
        embed(create_model("lessvit_test"), cube.isel(y=0))
