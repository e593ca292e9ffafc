"""Preset metadata (input kind, sizing, pretrained weights) and models sized to any channel count."""

import tempfile
from pathlib import Path

import pytest
import torch

from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import ChannelMismatchError, DataNotFoundError, InvalidParameterError
from hyperplex.common.models import INPUT_KINDS, create_model, list_models, preset_info, register_model

_WEIGHTS = Path(tempfile.mkdtemp(prefix="hyperplex-presets-")) / "chada.safetensors"


@register_model(sized_by="max_channels", weights=str(_WEIGHTS))  # no input kind: not offered in the GUI
def _presets_test_pretrained(**overrides):
    """ChAda-ViT test preset with weights in a file (the pretrained mechanism)."""
    return create_model("chadavit_test", **overrides)


def _markers(n: int) -> ChannelSet:
    return ChannelSet.from_names([f"marker{i}" for i in range(n)])


def test_every_builtin_preset_declares_its_input():
    expected = {"chadavit": "microscopy", "channelvit": "microscopy", "lessvit": "hyperspectral"}
    expected |= {"hypersegformer": "hyperspectral", "hyperefficientvit": "hyperspectral", "miphei": "he"}
    expected |= {"vit": "microscopy"}
    training_only = {"chadavit_mim_tiny"}  # hyperplex.common.train.chada_mim: a pretraining wrapper, no input kind
    for name in list_models():
        if name.startswith("_") or name in training_only:
            assert name not in training_only or preset_info(name).input is None
            continue
        assert preset_info(name).input == expected[name.split("_")[0]], name
    by_kind = [set(list_models(input=kind)) for kind in INPUT_KINDS]
    assert set().union(*by_kind) == {n for n in list_models() if preset_info(n).input}
    assert sum(map(len, by_kind)) == len(set().union(*by_kind))  # one kind each
    assert list_models("chadavit_*", input="hyperspectral") == []
    assert "chadavit_test" in list_models("chadavit_*", input="microscopy")


def test_pretrained_without_weights_says_so():
    assert "chadavit_moyen_patch16" not in list_models(pretrained=True)
    with pytest.raises(InvalidParameterError, match=r"'chadavit_moyen_patch16' has no pretrained weights.*lists those"):
        create_model("chadavit_moyen_patch16", pretrained=True)
    assert not preset_info("channelvit_test").pretrained
    with pytest.raises(InvalidParameterError, match="Did you mean"):
        preset_info("chadavit_tst")


def test_preset_with_weights_loads_them_and_is_listed_as_pretrained():
    _WEIGHTS.unlink(missing_ok=True)
    with pytest.raises(DataNotFoundError, match="_presets_test_pretrained"):
        create_model("_presets_test_pretrained", pretrained=True)
    torch.manual_seed(1)
    create_model("chadavit_test").save(_WEIGHTS)
    model = create_model("_presets_test_pretrained", pretrained=True)
    reference = create_model("chadavit_test")
    reference.load_state_dict(_state(_WEIGHTS))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))
    assert list_models("_presets_test_*", pretrained=True) == ["_presets_test_pretrained"]
    assert model.preset == "_presets_test_pretrained"
    with pytest.raises(InvalidParameterError, match="takes no constructor overrides.*depth"):
        create_model("_presets_test_pretrained", pretrained=True, depth=3)


def _state(path):
    from safetensors.torch import load_file

    return load_file(str(path))


@pytest.mark.parametrize("count", [1, 12, 60])
@pytest.mark.parametrize("preset", ["chadavit_test", "channelvit_test"])
def test_channel_adaptive_presets_take_any_marker_count(preset, count):
    channels = _markers(count)
    model = create_model(preset, channels=channels).eval()
    x = torch.randn(2, count, 32, 32)
    features = model.feature_map(x, channels)
    assert features.shape == (2, 32, 4, 4) and torch.isfinite(features).all()
    if preset == "chadavit_test":
        assert model.config["max_channels"] == count
    else:
        assert model.channel_vocab == list(channels.names) and model.config["in_chans"] is None
    assert torch.allclose(model.feature_map(x[1:], channels), features[1:], atol=1e-5)  # batch independence


def test_without_channels_the_preset_size_still_limits():
    with pytest.raises(ChannelMismatchError, match="10 channel slots but got 12"):
        create_model("chadavit_moyen_patch16", depth=1).check_channels(_markers(12))
    with pytest.raises(ChannelMismatchError, match="vocabulary"):
        create_model("channelvit_test").check_channels(_markers(3))
    assert create_model("chadavit_test", channels=_markers(12), max_channels=40).config["max_channels"] == 40


def test_channel_notes_and_other_sizers():
    note = preset_info("channelvit_test").channel_note(_markers(12))
    assert "12 marker names" in note and "no meaning" in note
    assert preset_info("chadavit_test").channel_note(_markers(12)) == "max_channels set to 12 for this image"
    assert preset_info("lessvit_test").channel_note(_markers(12)) is None
    bands = ChannelSet.from_wavelengths([450.0 + 10 * i for i in range(12)])
    assert create_model("hypersegformer_test", channels=bands).config["in_chans"] == 12
    assert create_model("lessvit_test", channels=bands).config == create_model("lessvit_test").config
    with pytest.raises(ChannelMismatchError, match="wavelengths"):
        create_model("lessvit_test", channels=_markers(3))


def test_unknown_tags_rejected():
    with pytest.raises(InvalidParameterError, match="input='lidar'"):
        register_model(input="lidar")(_bad)
    with pytest.raises(InvalidParameterError, match="sized_by='depth'"):
        register_model(sized_by="depth")(_bad)
    assert "_bad" not in list_models()
    with pytest.raises(InvalidParameterError, match="list_models: input='rgb'"):
        list_models(input="rgb")


def _bad(**overrides):
    return create_model("chadavit_test", **overrides)


def test_cli_list_shows_input_and_weights():
    from click.testing import CliRunner

    from hyperplex.common.cli import main

    result = CliRunner().invoke(main, ["models", "list", "--input", "he"])
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines()]
    assert [r[0] for r in rows] == list_models(input="he")
    assert all(r[1:3] == ["he", "pretrained" if preset_info(r[0]).pretrained else "random"] for r in rows)
    result = CliRunner().invoke(main, ["models", "list", "chadavit_*", "--pretrained"])
    assert result.exit_code == 0 and result.output.split()[0] == "chadavit_tiny_patch8"
    result = CliRunner().invoke(main, ["models", "list", "lessvit_*", "--pretrained"])
    assert result.exit_code != 0 and "none ship yet" in result.output
    info = CliRunner().invoke(main, ["models", "info", "channelvit_test", "--json"]).output
    assert '"input": "microscopy"' in info and '"sized_by": "channel_vocab"' in info


def test_the_shipped_microscopy_model_is_pretrained_and_takes_up_to_64_markers():
    assert [n for n in list_models(pretrained=True, input="microscopy") if not n.startswith("_")] == [
        "chadavit_tiny_patch8"
    ]
    model = create_model("chadavit_tiny_patch8", pretrained=True)
    assert model.preset == "chadavit_tiny_patch8" and not model.training
    assert model.config == create_model("chadavit_tiny_patch8").config  # the preset builds the saved architecture
    for count in (1, 12, 64):
        features = model.feature_map(torch.randn(1, count, 32, 32), _markers(count))
        assert features.shape == (1, 128, 4, 4) and torch.isfinite(features).all()
    with pytest.raises(ChannelMismatchError, match="64 channel slots but got 65"):
        create_model("chadavit_tiny_patch8", pretrained=True, channels=_markers(65))
