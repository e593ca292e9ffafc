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


def test_detect_rejects_an_unknown_method_listing_the_registered_ones(tmp_path):
    from hyperplex.geo.methane.registry import list_methods

    result = CliRunner().invoke(main, ["methane", "detect", "x.nc", "--out", str(tmp_path), "--method", "nope"])
    assert result.exit_code == 2 and all(name in result.output for name in list_methods())


def test_detect_rejects_bad_method_options_before_reading(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["methane", "detect", "x.nc", "--out", str(tmp_path), "-O", "bogus=1"])
    assert result.exit_code == 1 and "no option ['bogus']" in result.output
    result = runner.invoke(main, ["methane", "detect", "x.nc", "--out", str(tmp_path), "-O", "bogus"])
    assert result.exit_code == 2 and "KEY=VALUE" in result.output
    result = runner.invoke(main, ["methane", "detect", "x.nc", "--out", str(tmp_path), "--method", "mag1c-sas",
                                  "--group", "column"])  # fmt: skip
    assert result.exit_code == 1 and "fixed statistics grouping" in result.output
    assert not list(tmp_path.iterdir())


def test_methods_lists_each_method_with_units_and_description():
    from hyperplex.geo.methane.registry import get_method, list_methods

    lines = CliRunner().invoke(main, ["methane", "methods"]).output.splitlines()
    assert [line.split()[0] for line in lines] == list_methods()
    for line in lines:
        entry = get_method(line.split()[0])
        assert line.split()[1] == entry.units and line.endswith(entry.description)


def test_detection_options_take_the_configuration_defaults():
    from dataclasses import MISSING, fields

    from hyperplex.geo.cli import demo, methane
    from hyperplex.geo.detect.config import DelineationConfig, DetectConfig, MaskConfig

    parts = (DetectConfig, MaskConfig, DelineationConfig)
    defaults = {f.name: f.default for part in parts for f in fields(part) if f.default is not MISSING}
    for command in (demo, methane.commands["detect"]):
        options = {p.name: p.default for p in command.params if p.name in defaults}
        assert len(options) >= 14 and all(options[name] == defaults[name] for name in options), command.name


def test_cli_freezes_the_collector_at_exit():
    """A process that ran a command leaves its objects to the OS at exit (no final tracing of every object)."""
    code = (
        "import atexit, gc, sys; import hyperplex.common.cli; before = gc.get_freeze_count(); "
        "atexit._run_exitfuncs(); sys.stdout.write(f'{before} {gc.get_freeze_count()}')"
    )
    before, after = map(int, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                            check=True).stdout.split())  # fmt: skip
    assert before == 0 and after > 1000
