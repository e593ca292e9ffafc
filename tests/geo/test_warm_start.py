"""The CLI's warm start: the first granule's filter and resident cubes reserved, taken by the run, same products."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from click.testing import CliRunner

from hyperplex.common import warm_memory
from hyperplex.geo.detect import DetectConfig, analyze, open_source
from hyperplex.geo.detect.warm_start import scene_buffer_bytes, warm_start


@pytest.fixture(autouse=True)
def _clean_pool():
    warm_memory.release()
    yield
    warm_memory.release()


def _cube_bytes(path, cfg: DetectConfig) -> int:
    source = open_source(path)
    lines, samples = source.shape
    return lines * samples * source.channels.window(*cfg.window).size * 4


def test_sizes_are_the_filter_cube_and_mag1cs_resident_copy(emit_small):
    path = emit_small[1]["radiance"]
    cfg = DetectConfig()
    assert scene_buffer_bytes(path, cfg) == [_cube_bytes(path, cfg)] * 2
    narrow = replace(cfg, window=(2200.0, 2400.0))
    assert scene_buffer_bytes(path, narrow) == [_cube_bytes(path, narrow)] * 2 != scene_buffer_bytes(path, cfg)
    assert scene_buffer_bytes(path, replace(cfg, method="cem")) == [_cube_bytes(path, cfg)]


def test_nothing_is_reserved_where_the_header_does_not_tell(emit_small, tmp_path):
    path, cfg = emit_small[1]["radiance"], DetectConfig()
    assert scene_buffer_bytes(path, replace(cfg, bands=8)) == []  # a selection strategy decides the bands
    assert scene_buffer_bytes(tmp_path / "missing.nc", cfg) == []
    bad = tmp_path / "EMIT_L1B_RAD_bad.nc"
    bad.write_bytes(path.read_bytes()[:4096])  # HDF5 signature, then nothing readable
    assert scene_buffer_bytes(bad, cfg) == []
    text = tmp_path / "notes.txt"
    text.write_text("not a scene")
    assert warm_start([text], cfg) == [] and warm_memory.reserved() == []
    assert scene_buffer_bytes(path, replace(cfg, window=(2400.0, 2405.0))) == []  # too few bands: the run says so


def test_the_run_takes_both_buffers_and_gives_the_same_map(emit_small, monkeypatch):
    path, cfg = emit_small[1]["radiance"], DetectConfig()
    plain = analyze(open_source(path), cfg)
    dropped: list[int] = []
    release = warm_memory.release
    monkeypatch.setattr(warm_memory, "release", lambda: dropped.append(release()) or dropped[-1])
    sizes = warm_start([path], cfg)
    assert len(sizes) == 2
    warm = analyze(open_source(path), cfg)
    assert dropped and dropped[0] == 0, "the read or Mag1c's engine did not take a reserved buffer"
    np.testing.assert_array_equal(warm.enhancement, plain.enhancement)
    np.testing.assert_array_equal(warm.labels, plain.labels)
    assert [p["ime_kg"] for p in warm.plumes] == [p["ime_kg"] for p in plain.plumes]


def test_the_detect_command_warms_its_first_input(emit_small, tmp_path, monkeypatch):
    import hyperplex.geo.detect.warm_start as module
    from hyperplex.geo.cli import methane

    calls = []
    monkeypatch.setattr(module, "warm_start", lambda inputs, cfg: calls.append((list(inputs), cfg.method)) or [])
    path = str(emit_small[1]["radiance"])
    result = CliRunner().invoke(methane, ["detect", path, "--out", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output
    assert calls == [([path], "mag1c")]
