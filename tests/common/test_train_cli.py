"""``hyperplex train``: options, config file, model overrides, errors, entry-point registration."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hyperplex.common.cli.train import train
from hyperplex.common.train import write_tiles

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    rng = np.random.default_rng(1)
    image = rng.normal(size=(6, 3, 16, 16)).astype(np.float32)
    path = tmp_path_factory.mktemp("cli") / "tiles.zarr"
    return write_tiles(path, image, ["R", "G", "B"], label=np.arange(6) % 2, label_classes=["x", "y"])


def test_train_command_with_config_file_and_overrides(store, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(f"model: channelvit_test\ndata: {store}\ntask: classify\nepochs: 5\nlr: 0.01\n")
    out = tmp_path / "run"
    args = ["--config", str(config), "--max-steps", "2", "-b", "3", "--out", str(out), "--set", "depth=1",
            "--set", "img_size=16", "--no-hcs", "--quiet"]  # fmt: skip
    result = CliRunner().invoke(train, args)
    assert result.exit_code == 0, result.output
    assert "channelvit_test classify: step 2" in result.output
    saved = json.loads((out / "config.json").read_text())
    assert saved["lr"] == 0.01 and saved["batch_size"] == 3 and saved["model_args"] == {"depth": 1, "img_size": 16}
    assert saved["hcs"] is False
    assert json.loads((out / "summary.json").read_text())["step"] == 2
    assert (out / "checkpoint" / "state.json").exists() and (out / "model.safetensors").exists()


def test_train_command_reports_bad_input_clearly(store, tmp_path):
    result = CliRunner().invoke(train, ["--model", "chadavit_tset", "--data", str(store), "--out", str(tmp_path)])
    assert result.exit_code == 1 and "Did you mean chadavit_test" in result.output
    result = CliRunner().invoke(train, ["--model", "lessvit_test", "--data", str(store), "--out", str(tmp_path)])
    assert result.exit_code == 1 and "wavelength" in result.output.lower()
    result = CliRunner().invoke(train, ["--data", str(store)])
    assert result.exit_code == 1 and "--model" in result.output
    result = CliRunner().invoke(
        train, ["-m", "chadavit_test", "-d", str(store), "--task", "segment", "-o", str(tmp_path)]
    )
    assert result.exit_code == 1 and "mask" in result.output


def test_train_is_registered_as_a_hyperplex_command():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["hyperplex.commands"]["train"] == "hyperplex.common.cli.train:train"
