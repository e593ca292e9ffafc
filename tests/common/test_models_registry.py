"""Registry, config capture, safetensors save/load of HyperplexModel (with a small local model)."""

import json

import pytest
import torch
from torch import nn

from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import (
    DataNotFoundError,
    FileFormatError,
    InvalidParameterError,
    ModelCompatibilityError,
)
from hyperplex.common.models import HyperplexModel, create_model, list_models, load_model, register_model


class _Linear(HyperplexModel):
    """Per-pixel linear map over a fixed number of channels (a fixed-band model): the smallest full contract."""

    channel_adaptive = False
    feature_stride = 1

    def __init__(self, in_chans: int = 3, out_chans: int = 2, hidden: tuple = (4,)):
        super().__init__()
        self.a = nn.Conv2d(in_chans, hidden[0], 1)
        self.b = nn.Conv2d(hidden[0], out_chans, 1)

    @property
    def feature_dim(self):
        return self.a.out_channels

    def forward_features(self, x, channels, channel_mask=None):
        self._channels(channels, x)
        return torch.relu(self.a(x))

    feature_map = forward_features

    def forward_head(self, features):
        return self.b(features)


class _Wider(_Linear):
    """Subclass without its own __init__: config still captured."""


@register_model
def _registry_test_linear(**overrides):
    return _Linear(**{"in_chans": 3, **overrides})


def test_config_captured_with_defaults_and_json_types():
    m = _Linear(5, hidden=(6,))
    assert m.config == {"in_chans": 5, "out_chans": 2, "hidden": [6]}
    assert _Wider(in_chans=4).config["in_chans"] == 4
    json.dumps(m.config)


def test_contract_is_enforced_and_forward_is_head_of_features():
    class _NoFeatureMap(HyperplexModel):
        feature_stride, feature_dim = 1, 1

        def forward_features(self, x, channels, channel_mask=None):
            return x

    with pytest.raises(TypeError, match="feature_map"):
        _NoFeatureMap()
    m = _Linear(3)
    x = torch.randn(1, 3, 4, 5)
    features = m.feature_map(x, ["a", "b", "c"])
    assert features.shape == (1, m.feature_dim, 4, 5) and m.input_multiple == 1 and m.fixed_input_size is None
    assert torch.equal(m(x, ["a", "b", "c"]), m.b(features)) and torch.equal(m.normalize(x), x)
    assert m.output_channels is None


def test_non_json_config_rejected():
    with pytest.raises(InvalidParameterError, match="JSON"):
        _Linear(3, hidden=(4, nn.ReLU()))


def test_create_and_list():
    m = create_model("_registry_test_linear", out_chans=7)
    assert m.preset == "_registry_test_linear"
    assert m.config["out_chans"] == 7
    assert "_registry_test_linear" in list_models("_registry_test_*")
    assert list_models("_no_such_prefix_*") == []
    with pytest.raises(InvalidParameterError, match="Did you mean"):
        create_model("_registry_test_linea")


def test_duplicate_registration_rejected():
    with pytest.raises(InvalidParameterError, match="twice"):
        register_model(_registry_test_linear.__wrapped__)


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    m = create_model("_registry_test_linear", in_chans=4)
    m.trained_channels = ChannelSet.from_wavelengths([450.0, 550.0, 650.0, 850.0])
    path = tmp_path / "m.safetensors"
    m.save(path)
    assert not list(tmp_path.glob(".*tmp*"))
    r = load_model(path)
    assert type(r) is _Linear and r.preset == "_registry_test_linear" and r.config == m.config
    assert r.trained_channels == m.trained_channels
    x = torch.randn(2, 4, 5, 5)
    assert torch.equal(m.eval()(x, m.trained_channels), r(x, m.trained_channels))


def test_load_checks(tmp_path):
    m = _Linear(3)
    m.trained_channels = ChannelSet.from_names(["a", "b", "c"])
    path = tmp_path / "m.safetensors"
    m.save(path)
    with pytest.raises(ModelCompatibilityError, match="trained on"):
        load_model(path, channels=["a", "b", "d"])
    load_model(path, channels=["a", "b", "c"])
    with pytest.raises(DataNotFoundError):
        load_model(tmp_path / "missing.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"not a file")
    with pytest.raises(FileFormatError):
        load_model(tmp_path / "bad.safetensors")


def test_shape_mismatch_names_file_and_key(tmp_path):
    path = tmp_path / "m.safetensors"
    _Linear(3).save(path)
    state = _Linear(5).state_dict()
    with pytest.raises(ModelCompatibilityError, match=r"a\.weight"):
        _Linear(3).load_state_dict_checked(state, source=str(path))
    with pytest.raises(ModelCompatibilityError, match="missing"):
        _Linear(3).load_state_dict_checked({}, source="x")
    _Linear(3).load_state_dict_checked({}, strict=False, source="x")
