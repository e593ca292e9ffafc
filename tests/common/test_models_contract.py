"""The model contract, checked for every registered family through its tiny ``*_test`` preset.

Parametrized over the registry (``list_models("*_test")``), so a new family is tested as soon as it
registers a ``<prefix>_test`` preset; a test fails when a model class has no such preset.
"""

import inspect

import numpy as np
import pytest
import torch

from hyperplex.common.channels import ChannelSet
from hyperplex.common.models import HyperplexModel, create_model, list_models, load_model
from hyperplex.common.models._base import model_classes

TEST_PRESETS = list_models("*_test")


def example_input(model: HyperplexModel, batch: int = 2) -> tuple[torch.Tensor, ChannelSet]:
    """A non-square batch the model accepts, with channels carrying both names ``c<i>`` and wavelengths."""
    count = getattr(model, "in_chans", None) or len(getattr(model, "channel_vocab", None) or ()) or 5
    channels = ChannelSet.from_wavelengths(np.linspace(450.0, 2400.0, count), names=[f"c{i}" for i in range(count)])
    side = model.fixed_input_size
    m = max(model.input_multiple, 16)
    h, w = (side, side) if side else (2 * m, 3 * m)
    return torch.randn(batch, count, h, w, generator=torch.Generator().manual_seed(0)), channels


def _built(preset: str, *, train: bool = False, batch: int = 2):
    """The preset (seeded weights) in eval or train mode, with an example batch and its channels."""
    torch.manual_seed(0)
    model = create_model(preset).train(train)
    return (model, *example_input(model, batch))


def _scalar(out) -> torch.Tensor:
    return out["loss"] if isinstance(out, dict) else out.square().mean()


def test_every_model_class_has_a_test_preset():
    covered = {type(create_model(name)) for name in TEST_PRESETS}
    classes = {
        cls
        for key, cls in model_classes().items()
        if key.startswith("hyperplex.common.models.") and not inspect.isabstract(cls)
    }
    assert classes and classes <= covered, f"no *_test preset for {sorted(c.__name__ for c in classes - covered)}"


@pytest.mark.parametrize("preset", TEST_PRESETS)
def test_feature_map_shape_stride_and_finite(preset):
    model, x, channels = _built(preset)
    with torch.no_grad():
        features = model.feature_map(x, channels)
        out = model(x, channels)
    s = model.feature_stride
    assert x.shape[-1] % model.input_multiple == 0 and model.input_multiple % s == 0
    assert features.shape == (2, model.feature_dim, x.shape[-2] // s, x.shape[-1] // s)
    assert torch.isfinite(features).all() and features.std() > 0
    assert all(torch.isfinite(v).all() for v in (out.values() if isinstance(out, dict) else [out]))


@pytest.mark.parametrize("preset", TEST_PRESETS)
def test_feature_map_is_per_sample(preset):
    """Batching does not mix samples: the second sample's map alone equals its map in the batch."""
    model, x, channels = _built(preset)
    with torch.no_grad():
        torch.testing.assert_close(model.feature_map(x[1:], channels)[0], model.feature_map(x, channels)[1])


@pytest.mark.parametrize("preset", TEST_PRESETS)
def test_gradients_reach_every_trainable_parameter(preset):
    model, x, channels = _built(preset, train=True)
    if hasattr(model, "hcs"):
        model.hcs.enabled = False  # every channel present, so every embedding row is used
    _scalar(model(x, channels)).backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    missing = [n for n, p in trainable if p.grad is None or not torch.isfinite(p.grad).all()]
    assert trainable and not missing


@pytest.mark.parametrize("preset", TEST_PRESETS)
def test_save_load_round_trip_keeps_feature_map(preset, tmp_path):
    model, x, channels = _built(preset, batch=1)
    model.save(tmp_path / "m.safetensors")
    loaded = load_model(tmp_path / "m.safetensors")
    assert type(loaded) is type(model) and loaded.preset == preset and loaded.config == model.config
    assert (loaded.feature_stride, loaded.feature_dim) == (model.feature_stride, model.feature_dim)
    with torch.no_grad():
        assert torch.equal(model.feature_map(x, channels), loaded.feature_map(x, channels))
