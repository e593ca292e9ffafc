"""Tiled inference (hyperplex.common.models.inference): exact stitching, padding, validation, progress."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import ChannelMismatchError, InvalidParameterError
from hyperplex.common.models import HyperplexModel, create_model, tiled_feature_map, tiled_predict
from hyperplex.common.models.inference import run_steps, tiled_feature_map_steps


class _BlockMean(HyperplexModel):
    """Features: 4x4 block means (stride 4) plus a learned offset; output: 2 x input (stride 1, local)."""

    feature_stride = 4

    def __init__(self, multiple: int = 4):
        super().__init__()
        self.offset = torch.nn.Parameter(torch.zeros(1))
        self.multiple = multiple

    @property
    def feature_dim(self):
        return 3

    @property
    def input_multiple(self):
        return self.multiple

    def forward_features(self, x, channels, channel_mask=None):
        if x.shape[-2] % self.multiple or x.shape[-1] % self.multiple:
            raise AssertionError(f"unpadded input {tuple(x.shape)}")
        return F.avg_pool2d(x, 4) + self.offset

    feature_map = forward_features

    def forward(self, x, channels, channel_mask=None):
        self.forward_features(x, channels)
        return 2 * x


def _quiet(done, total):
    pass


def _block_mean(image):
    c, h, w = image.shape
    return image.reshape(c, h // 4, 4, w // 4, 4).mean(axis=(2, 4))


@pytest.mark.parametrize(("tile", "overlap", "multiple"), [(16, 0, 4), (16, 8, 4), (24, 4, 4), (64, 0, 4), (32, 8, 16)])
def test_tiled_feature_map_equals_the_untiled_map(tile, overlap, multiple):
    image = np.random.default_rng(0).random((3, 50, 37)).astype(np.float32)
    out = tiled_feature_map(
        _BlockMean(multiple), image, None, tile_size=tile, overlap=overlap, progress=lambda *_: None
    )
    assert out.shape == (3, 13, 10) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, :12, :9], _block_mean(image[:, :48, :36]), rtol=1e-5, atol=1e-6)


def test_tiled_predict_of_a_local_model_is_exact_at_any_size_and_axis():
    image = np.random.default_rng(1).random((30, 45, 3)).astype(np.float32)  # channels last
    out = tiled_predict(
        _BlockMean(16), image, None, tile_size=32, overlap=12, channel_axis=-1, progress=lambda *_: None
    )
    np.testing.assert_allclose(out, 2 * np.moveaxis(image, -1, 0), rtol=1e-6)


def test_transform_progress_and_stopping():
    image = np.ones((3, 32, 32), dtype=np.float32)
    calls = []
    out = tiled_feature_map(
        _BlockMean(),
        image,
        None,
        tile_size=16,
        overlap=0,
        transform=lambda t: t * 3,
        progress=lambda *a: calls.append(a),
    )
    np.testing.assert_allclose(out, 3.0)
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]

    def stop(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tiled_feature_map(_BlockMean(), image, None, tile_size=16, progress=stop)
    steps = tiled_feature_map_steps(_BlockMean(), image, None, tile_size=16, overlap=0)
    assert next(steps) == (1, 4)
    steps.close()  # a worker stopping between tiles
    np.testing.assert_allclose(run_steps(tiled_feature_map_steps(_BlockMean(), image, None, tile_size=32)), 1.0)


def test_validation_names_the_parameter():
    image = np.zeros((3, 32, 32), dtype=np.float32)
    with pytest.raises(InvalidParameterError, match="tile_size"):
        tiled_feature_map(_BlockMean(16), image, None, tile_size=24)
    with pytest.raises(InvalidParameterError, match="overlap"):
        tiled_feature_map(_BlockMean(), image, None, tile_size=16, overlap=6)
    with pytest.raises(ChannelMismatchError):
        tiled_feature_map(_BlockMean(), image, ["a", "b"], tile_size=16)


def test_single_tile_equals_the_model_and_training_flag_is_restored():
    torch.manual_seed(0)
    model = create_model("chadavit_test").train()
    image = np.random.default_rng(2).standard_normal((4, 40, 24)).astype(np.float32)
    channels = ChannelSet.default(4)
    out = tiled_feature_map(model, image, channels, tile_size=64, overlap=0, progress=_quiet)
    assert model.training
    with torch.no_grad():
        direct = model.eval().feature_map(torch.from_numpy(image)[None], channels)[0].numpy()
    np.testing.assert_allclose(out, direct, rtol=1e-5, atol=1e-5)
