"""Faults during ``hyperplex methane detect``: kill -9 at every stage, a full disk, Ctrl-C.

The pipeline kills itself at a named moment when ``HYPERPLEX_FAULT`` says so
(:mod:`hyperplex.geo.detect.faults`). After every fault: no final-named product is corrupt (each one that
exists opens and is whole), no ``run.json`` claims an unfinished run, and a rerun completes, cleans the
killed run's temporaries and never trusts products another run left behind.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hyperplex.geo.detect.faults import FAULT_ENV, FAULT_POINTS
from hyperplex.geo.detect.outputs import PRODUCTS, is_complete, product_paths

_CLI = "from hyperplex.common.cli import main; main()"


@pytest.fixture(scope="module")
def granule(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hyperplex.geo.synth import emit_scene, write_emit_scene

    scene = emit_scene(lines=48, samples=48, plumes=1, seed=5)
    return write_emit_scene(scene, tmp_path_factory.mktemp("faults"), "scene")["radiance"]


def _detect(granule: Path, out: Path, fault: str | None = None, **popen: object) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop(FAULT_ENV, None)
    if fault:
        env[FAULT_ENV] = fault
    args = [sys.executable, "-c", _CLI, "methane", "detect", str(granule), "--out", str(out), "-q"]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint, **popen)  # fmt: skip


def _default_sigint() -> None:
    """Ctrl-C as in a terminal, also when the test runner was started in the background (SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _assert_no_corrupt_product(out: Path, stem: str = "scene") -> None:
    """Every final-named product that exists is whole; run.json exists only with every product it names."""
    import rasterio
    from PIL import Image

    paths = product_paths(out, stem)
    for key, path in paths.items():
        if not path.exists():
            continue
        if path.suffix == ".tif":
            with rasterio.open(path) as src:
                assert np.isfinite(src.read(1)).any() or key == "plumes_raster"
        elif path.suffix == ".png":
            with Image.open(path) as image:
                image.load()
        else:
            json.loads(path.read_text())
    if paths["run"].exists():
        assert is_complete(paths, json.loads(paths["run"].read_text())["parameters"])


def _temporaries(out: Path) -> list[Path]:
    return sorted(p for p in out.glob(".*") if ".tmp-" in p.name)


def _rerun_completes(granule: Path, out: Path) -> dict:
    from hyperplex.geo.detect import detect_scene

    summary = detect_scene(granule, out)
    assert summary["status"] in ("complete", "skipped")
    assert not _temporaries(out), _temporaries(out)
    paths = product_paths(out, "scene")
    run = json.loads(paths["run"].read_text())
    assert is_complete(paths, run["parameters"])
    return summary


@pytest.mark.slow
@pytest.mark.parametrize("point", FAULT_POINTS)
def test_kill_at_every_stage_leaves_no_corrupt_file_and_a_rerun_completes(point, granule, tmp_path):
    out = tmp_path / "out"
    proc = _detect(granule, out, point)
    proc.communicate(timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.returncode
    _assert_no_corrupt_product(out)
    assert (product_paths(out, "scene")["run"].exists()) == (point == "run")
    if point.endswith(":temporary"):
        assert _temporaries(out), "the kill inside an atomic write leaves its temporary behind"
    summary = _rerun_completes(granule, out)
    assert summary["status"] == ("skipped" if point == "run" else "complete")


@pytest.mark.parametrize("point", ["filtered", "plumes_raster:temporary", "quicklook"])
def test_kill_at_three_stages(point, granule, tmp_path):
    """The fast subset of the kill test (the full one, every stage, is marked slow)."""
    test_kill_at_every_stage_leaves_no_corrupt_file_and_a_rerun_completes(point, granule, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.5, 2.0, 4.0, 6.0, 8.0])
def test_kill_after_a_delay(delay, granule, tmp_path):
    out = tmp_path / "out"
    proc = _detect(granule, out)
    time.sleep(delay)
    proc.kill()
    proc.communicate(timeout=600)
    _assert_no_corrupt_product(out)
    _rerun_completes(granule, out)


def test_a_rerun_never_trusts_products_of_another_run(granule, tmp_path):
    """run.json of a finished mag1c run, one product replaced by a killed run of another method: recomputed."""
    from hyperplex.geo.detect import DetectConfig, detect_scene

    first = detect_scene(granule, tmp_path / "a")
    detect_scene(granule, tmp_path / "b", DetectConfig(method="mf"))
    for key in ("enhancement", "quicklook"):
        replaced = product_paths(tmp_path / "a", "scene")[key]
        os.replace(product_paths(tmp_path / "b", "scene")[key], replaced)
        again = detect_scene(granule, tmp_path / "a")
        assert again["status"] == "complete" and again["run_id"] != first["run_id"]
        assert detect_scene(granule, tmp_path / "a")["status"] == "skipped"


def test_an_old_run_json_without_run_id_is_not_trusted(granule, tmp_path):
    from hyperplex.geo.detect import detect_scene

    detect_scene(granule, tmp_path)
    run_file = product_paths(tmp_path, "scene")["run"]
    run = json.loads(run_file.read_text())
    run.pop("run_id")
    run_file.write_text(json.dumps(run))
    assert detect_scene(granule, tmp_path)["status"] == "complete"


def test_ctrl_c_exits_130_without_traceback_or_partial_file(granule, tmp_path):
    out = tmp_path / "out"
    proc = _detect(granule, out, "plumes_raster:temporary:int")
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Interrupted" in err
    assert not _temporaries(out)
    assert not product_paths(out, "scene")["plumes_raster"].exists()
    _assert_no_corrupt_product(out)
    _rerun_completes(granule, out)


def _fill_disk_after(monkeypatch: pytest.MonkeyPatch, writes: int) -> None:
    """Make the ``writes``-th product write (and every later one) fail with ENOSPC naming its temporary file."""
    import hyperplex.geo.detect.outputs as outputs

    count = {"n": 0}
    original = outputs.atomic_path

    def full(path):
        count["n"] += 1
        if count["n"] >= writes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return original(path)

    monkeypatch.setattr(outputs, "atomic_path", full)


@pytest.mark.parametrize("writes", [1, 2, 3, 4])
def test_a_full_disk_names_the_file_and_leaves_no_run_json(writes, granule, tmp_path, monkeypatch):
    from hyperplex.geo.detect import detect_scene

    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        _fill_disk_after(patch, writes)
        with pytest.raises(OSError) as info:
            detect_scene(granule, out)
    assert info.value.errno == errno.ENOSPC and info.value.filename and "scene_" in info.value.filename
    assert not product_paths(out, "scene")["run"].exists()
    _assert_no_corrupt_product(out)
    _rerun_completes(granule, out)


def test_an_error_while_the_map_is_being_written_waits_for_it_and_leaves_no_half_file(granule, tmp_path, monkeypatch):
    """Vetting fails while the second thread writes the enhancement COG: the error propagates after that write
    finished (whole, renamed), nothing else is written, no temporary or run.json is left; a rerun completes."""
    import hyperplex.geo.detect.scene as scene
    from hyperplex.geo.detect import detect_scene

    def broken(*args, **kwargs):
        raise RuntimeError("vetting failed")

    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        patch.setattr(scene, "describe_plumes", broken)
        with pytest.raises(RuntimeError, match="vetting failed"):
            detect_scene(granule, out)
    assert not _temporaries(out)
    present = {p.name for p in out.iterdir() if p.name.startswith("scene_")}
    assert present == {product_paths(out, "scene")["enhancement"].name}, present  # finished, not abandoned
    _assert_no_corrupt_product(out)
    _rerun_completes(granule, out)


def _tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return done.returncode == 0


@pytest.mark.parametrize("size", ["16k", "40k"])
def test_a_real_full_disk_tmpfs(size, granule, tmp_path):
    """On a tiny tmpfs (root only; skipped elsewhere): one line naming the file, no corrupt product, no run.json;
    then the disk grows and the rerun completes."""
    disk = tmp_path / "disk"
    if not _tmpfs(disk, size):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    out = disk / "out"
    try:
        proc = _detect(granule, out)
        stdout, stderr = proc.communicate(timeout=600)
        text = stdout + stderr
        assert "Traceback" not in text
        if proc.returncode != 0:  # the disk filled up (the usual case): the product that did not fit is named
            failed = [ln for ln in text.splitlines() if ln.startswith("FAILED")]
            assert proc.returncode == 1 and len(failed) == 1 and str(out) in failed[0], text
            assert "No space left" in failed[0]
            assert not product_paths(out, "scene")["run"].exists()
        _assert_no_corrupt_product(out)
        assert not _temporaries(out)
        subprocess.run(["mount", "-o", "remount,size=16m", str(disk)], check=True, capture_output=True)
        _rerun_completes(granule, out)
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


@pytest.mark.parametrize("size", ["4k", "8k"])
def test_a_cog_that_does_not_fit_raises_and_leaves_no_file(size, tmp_path):
    """GDAL's copy into a full file only logs the write error: write_cog must raise, not rename a torn COG."""
    from affine import Affine

    from hyperplex.geo.detect.outputs import write_cog

    disk = tmp_path / "disk"
    if not _tmpfs(disk, size):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    path = disk / "scene_ch4enh.tif"
    data = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)  # ~16 kB, incompressible
    try:
        with pytest.raises(OSError) as info:
            write_cog(path, data, crs="EPSG:4326", transform=Affine(1e-3, 0, 0, 0, -1e-3, 0), nodata=np.nan,
                      description="x", tags={"units": "ppm·m"})  # fmt: skip
        assert info.value.errno == errno.ENOSPC and info.value.filename == str(path)
        assert not list(disk.iterdir()), "a torn COG or its temporary was left"
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


def test_every_product_suffix_has_a_fault_point():
    keys = {p.split(":")[0] for p in FAULT_POINTS}
    assert set(PRODUCTS) <= keys and len(FAULT_POINTS) >= 10


def _listed_products(out: Path, stem: str = "scene") -> set[str]:
    """The scene's files in ``out``, checked to be exactly those its run.json lists (and fingerprints)."""
    run = json.loads((out / f"{stem}_run.json").read_text())
    listed = {Path(p).name for p in run["outputs"].values()}
    assert set(run["products"]) == set(run["outputs"]) - {"run"}
    present = {p.name for p in out.iterdir() if p.name.startswith(f"{stem}_")}
    assert present == listed, (present, listed)
    return present


def test_overwrite_with_another_kind_of_method_removes_the_old_map(granule, tmp_path):
    from hyperplex.common.errors import InvalidParameterError, OutputExistsError
    from hyperplex.geo.detect import DetectConfig, detect_scene

    detect_scene(granule, tmp_path, DetectConfig(method="mf"))
    assert "scene_ch4enh.tif" in _listed_products(tmp_path)
    with pytest.raises(OutputExistsError) as info:
        detect_scene(granule, tmp_path, DetectConfig(method="cem"))
    assert isinstance(info.value, InvalidParameterError)
    for phrase in (str(tmp_path), "'mf'", "--overwrite", "--out"):
        assert phrase in str(info.value), str(info.value)
    detect_scene(granule, tmp_path, DetectConfig(method="cem", overwrite=True))
    present = _listed_products(tmp_path)
    assert "scene_ch4score.tif" in present and "scene_ch4enh.tif" not in present
    detect_scene(granule, tmp_path, DetectConfig(method="mf", overwrite=True))
    present = _listed_products(tmp_path)
    assert "scene_ch4enh.tif" in present and "scene_ch4score.tif" not in present


def test_a_killed_overwrite_keeps_the_old_map_until_the_new_run_is_complete(granule, tmp_path):
    from hyperplex.geo.detect import DetectConfig, detect_scene

    detect_scene(granule, tmp_path, DetectConfig(method="mf"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", FAULT_ENV: "quicklook"}
    args = [sys.executable, "-c", _CLI, "methane", "detect", str(granule), "--out", str(tmp_path), "-q",
            "--method", "cem", "--overwrite"]  # fmt: skip
    subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert (tmp_path / "scene_ch4enh.tif").exists()  # killed before its run.json: the old map stays
    assert json.loads((tmp_path / "scene_run.json").read_text())["method"] == "mf"
    detect_scene(granule, tmp_path, DetectConfig(method="cem", overwrite=True))
    assert "scene_ch4enh.tif" not in _listed_products(tmp_path)
