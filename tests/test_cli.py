"""The `hyperplex` console script: help, version, synth emit and the demo."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from hyperplex.common import __version__
from hyperplex.common.cli import main


def test_help_and_version():
    runner = CliRunner()
    result = runner.invoke(main, ["--help"])
    assert result.exit_code == 0 and "synth" in result.output and "demo" in result.output
    result = runner.invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_console_script_is_installed():
    exe = Path(sys.executable).with_name("hyperplex")
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert __version__ in out.stdout


def test_synth_emit_writes_granule_and_truth(tmp_path):
    args = ["--lines", "32", "--samples", "24", "--plumes", "1", "--size", "2", "3", "--stem", "EMIT_TEST", "--quiet"]
    result = CliRunner().invoke(main, ["synth", "emit", "--out", str(tmp_path), *args])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["EMIT_TEST.nc", "EMIT_TEST_truth.json", "EMIT_TEST_truth.nc"]


def test_demo_runs_and_reports_outputs(tmp_path):
    result = CliRunner().invoke(main, ["demo", "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "quicklook" in result.output
    assert list(tmp_path.glob("*_quicklook.png"))
