"""Progress inside the filter stage: Mag1c's bar advances to completion per batch of groups, --quiet prints nothing."""

import numpy as np
import pytest
from click.testing import CliRunner

import hyperplex.geo.methane.mag1c_filter.compiled_engine as compiled_engine
import hyperplex.geo.methane.mag1c_filter.torch_engine as torch_engine
from hyperplex.common.cli import main
from hyperplex.common.progress import progress, quiet
from hyperplex.geo.methane import mag1c
from hyperplex.geo.synth import emit_scene


@pytest.fixture(scope="module")
def wide():
    """150 detector columns: three batches of groups per compiled pass at the default batch size."""
    scene = emit_scene(lines=64, samples=150, plumes=1, seed=5)
    return np.moveaxis(scene.radiance, -1, 0), scene.wavelengths, scene.fwhm


def _recording(monkeypatch, module):
    """Replace the module's ``progress`` with one that keeps its bars and every update."""
    bars, steps = [], []

    def recorded(*args, **kwargs):
        bar = progress(*args, **kwargs)
        update = bar.update
        bar.update = lambda n=1: (steps.append(n), update(n))[1]
        bars.append(bar)
        return bar

    monkeypatch.setattr(module, "progress", recorded)
    return bars, steps


@pytest.mark.parametrize("engine", ["compiled", "torch"])
def test_mag1c_bar_advances_to_completion(wide, monkeypatch, engine):
    if engine == "compiled" and not compiled_engine.available():
        pytest.skip("numba is not installed")
    module = compiled_engine if engine == "compiled" else torch_engine
    bars, steps = _recording(monkeypatch, module)
    mag1c(*wide, engine="auto" if engine == "compiled" else "torch", num_iter=3)
    assert len(bars) == 1 and bars[0].desc.startswith("mag1c")
    total = bars[0].total
    expected = 2 * 150 if engine == "compiled" else 3 + 1  # groups x (first pass, iterations); passes
    assert total == expected and sum(steps) == total and len(steps) >= (6 if engine == "compiled" else 4)


def test_batched_kernel_calls_equal_one_call(wide, monkeypatch):
    if not compiled_engine.available():
        pytest.skip("numba is not installed")
    monkeypatch.setattr(compiled_engine, "MIN_GROUPS_PER_CALL", 10**9)
    one, one_albedo = mag1c(*wide, return_albedo=True)
    monkeypatch.setattr(compiled_engine, "MIN_GROUPS_PER_CALL", 7)
    monkeypatch.setattr(compiled_engine, "CALLS_PER_PASS", 1000)
    assert len(compiled_engine.group_batches(150)) == 22
    many, many_albedo = mag1c(*wide, return_albedo=True)
    np.testing.assert_array_equal(many, one)
    np.testing.assert_array_equal(many_albedo, one_albedo)


def test_group_batches_cover_every_group_once():
    for n in (0, 1, 63, 64, 65, 1242):
        batches = compiled_engine.group_batches(n)
        assert [i for b in batches for i in range(b.start, b.stop)] == list(range(n))
        assert len(batches) <= max(1, compiled_engine.CALLS_PER_PASS)


def test_quiet_silences_the_filter_bar(wide, capsys):
    mag1c(*wide)
    assert "mag1c" in capsys.readouterr().err
    with quiet():
        mag1c(*wide)
    assert capsys.readouterr().err == ""


def test_cli_detect_shows_the_filter_stage_and_quiet_prints_nothing(emit_small, tmp_path):
    _, paths = emit_small
    loud = CliRunner().invoke(main, ["methane", "detect", str(paths["radiance"]), "--out", str(tmp_path / "a")])
    assert loud.exit_code == 0, loud.output
    assert "mag1c:" in loud.stderr
    silent = CliRunner().invoke(
        main, ["methane", "detect", str(paths["radiance"]), "--out", str(tmp_path / "b"), "--quiet"]
    )
    assert silent.exit_code == 0, silent.output
    assert silent.stderr == "" and "%|" not in silent.output
