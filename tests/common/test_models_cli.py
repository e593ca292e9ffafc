"""``hyperplex models list`` and ``hyperplex models info``."""

import json
import subprocess
import sys

from click.testing import CliRunner

from hyperplex.common.cli import main
from hyperplex.common.models import create_model, list_models


def test_list_all_and_pattern():
    result = CliRunner().invoke(main, ["models", "list"])
    assert result.exit_code == 0, result.output
    listed = [line.split()[0] for line in result.output.splitlines()]
    assert listed == list_models()
    for prefix in ("channelvit_", "chadavit_", "lessvit_"):
        assert f"{prefix}test" in listed
    result = CliRunner().invoke(main, ["models", "list", "lessvit_*"])
    assert all(line.startswith("lessvit_") for line in result.output.splitlines())
    assert CliRunner().invoke(main, ["models", "list", "zzz*"]).exit_code != 0


def test_info_counts_parameters_and_tokens():
    result = CliRunner().invoke(main, ["models", "info", "channelvit_test", "-c", "5", "-s", "64", "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    model = create_model("channelvit_test")
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    assert info["tokens_per_image"] == 1 + 5 * (64 // 8) ** 2
    assert info["config"] == model.config
    text = CliRunner().invoke(main, ["models", "info", "lessvit_test", "-c", "13", "-s", "32"]).output
    assert "tokens per image  238 for 13 channels" in text  # (13 + 1) * (16 + 1)


def test_info_unknown_name_suggests():
    result = CliRunner().invoke(main, ["models", "info", "lessvit_tst"])
    assert result.exit_code != 0 and "Did you mean" in result.output


def test_cli_import_does_not_import_torch():
    code = "import sys, hyperplex.common.cli; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
