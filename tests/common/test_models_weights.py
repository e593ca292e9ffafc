"""Every shipped pretrained weights file: a model card with its command, a size limit, offline loading."""

import re
import socket
import tomllib
from pathlib import Path

import pytest

from hyperplex.common.models import WEIGHTS_DIR, create_model, list_models, preset_info

ROOT = Path(__file__).resolve().parents[2]
#: Size limits per family (the issues' budgets), in bytes.
LIMITS = {"chadavit": 20e6, "channelvit": 20e6, "miphei": 30e6, "hypersegformer": 10e6, "hyperefficientvit": 10e6}


def _shipped() -> list[str]:
    return [n for n in list_models(pretrained=True) if not n.startswith("_")]


def test_every_weights_file_belongs_to_a_preset_and_has_a_card():
    named = {preset_info(n).weights_path.name for n in _shipped()}
    for path in WEIGHTS_DIR.glob("*.safetensors"):
        assert path.name in named, f"{path.name} is shipped but no preset names it"
    for name in _shipped():
        path = preset_info(name).weights_path
        assert path.parent == WEIGHTS_DIR and path.is_file(), name
        assert path.stat().st_size <= LIMITS.get(name.split("_")[0], 10e6), f"{path.name} is over its size limit"
        card = path.with_suffix(".md").read_text()
        assert re.search(r"^Command: `[^`]+`", card, re.M), f"{path.name}: the card names no `Command:`"


def test_weights_are_package_data():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert {"weights/*.safetensors", "weights/*.md"} <= set(data["hyperplex.common.models"])


@pytest.mark.parametrize("name", _shipped() or [pytest.param(None, marks=pytest.mark.skip(reason="none ship"))])
def test_shipped_weights_load_without_network(name, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("loading pretrained weights tried to open a network connection")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    model = create_model(name, pretrained=True)
    assert model.preset == name and not model.training
