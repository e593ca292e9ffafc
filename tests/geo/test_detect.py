"""End to end: synthetic EMIT scenes with a rotated GLT through `hyperplex methane detect`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner

from hyperplex.common import NoValidDataError
from hyperplex.common.cli import main
from hyperplex.geo.detect import DetectConfig, detect_many, detect_scene
from hyperplex.geo.detect.batch import expand_inputs
from hyperplex.geo.methane.registry import PPMM, get_method, list_methods
from hyperplex.geo.ortho import apply_glt
from hyperplex.geo.synth import emit_scene, write_emit_scene

SCENE = dict(lines=192, samples=160, water=1, lookalikes=3, saturated=1, flares=1, fill_columns=1, glt_rotation=30.0,
             plume_strength=(1200.0, 3000.0), plume_size=(2.5, 3.5))  # fmt: skip


@pytest.fixture(scope="module")
def plume_run(tmp_path_factory):
    scene = emit_scene(plumes=3, seed=21, **SCENE)
    base = tmp_path_factory.mktemp("detect")
    paths = write_emit_scene(scene, base / "in", stem="EMIT_L1B_RAD_001_20250601T170000_2515200_001")
    summary = detect_scene(paths["radiance"], base / "out", DetectConfig(method="mag1c"))
    return scene, paths, summary, base / "out"


def _truth_plume_matches(scene, plume_raster):
    """For each injected plume: ids of detected plumes overlapping its truth footprint on the ortho grid."""
    geo = scene.geometry
    truth_ortho = apply_glt(scene.plume_labels, geo.glt_x, geo.glt_y, fill=0)
    return {p["id"]: set(np.unique(plume_raster[truth_ortho == p["id"]])) - {0} for p in scene.plumes}


def test_every_strong_plume_is_found_with_its_mass(plume_run):
    scene, _, summary, out = plume_run
    with rasterio.open(out / f"{summary['scene']}_plumes.tif") as src:
        plume_raster = src.read(1)
    matches = _truth_plume_matches(scene, plume_raster)
    by_id = {p["id"]: p for p in summary["plumes"]}
    for truth in scene.plumes:
        assert truth["peak_ppmm"] >= 1000 and truth["pixels"] >= 20
        assert matches[truth["id"]], f"plume {truth['id']} ({truth['peak_ppmm']:.0f} ppm·m) not found"
        ime = sum(by_id[i]["ime_kg"] for i in matches[truth["id"]])
        assert ime == pytest.approx(truth["ime_kg"], rel=0.30), (truth, [by_id[i] for i in matches[truth["id"]]])
    for p in summary["plumes"]:
        for key in ("id", "max_ppmm", "mean_ppmm", "pixels", "area_m2", "ime_kg", "centroid_lon", "centroid_lat",
                    "bbox", "confidence", "confidence_score", "spectral_score", "snr"):  # fmt: skip
            assert p[key] is not None, key


def test_outputs_are_on_the_files_ortho_grid(plume_run):
    scene, _, summary, out = plume_run
    geo = scene.geometry
    for name in ("ch4enh", "plumes"):
        with rasterio.open(out / f"{summary['scene']}_{name}.tif") as src:
            assert src.crs.to_epsg() == 4326
            assert src.transform.to_gdal() == pytest.approx(geo.geotransform, rel=0, abs=1e-12)
            assert (src.height, src.width) == geo.glt_x.shape
            assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            assert src.tags()["method"] == "mag1c"
    with rasterio.open(out / f"{summary['scene']}_ch4enh.tif") as src:
        enh = src.read(1)
    assert np.isnan(enh[geo.glt_x == 0]).all()
    assert np.nanmax(enh) > 1000


def test_geojson_and_run_json(plume_run):
    from shapely.geometry import shape

    scene, _, summary, out = plume_run
    fc = json.loads((out / f"{summary['scene']}_plumes.geojson").read_text())
    assert len(fc["features"]) == summary["plume_count"] >= 3
    for feat in fc["features"]:
        geom = shape(feat["geometry"])
        assert geom.is_valid and geom.area > 0
        lon, lat = feat["properties"]["centroid_lon"], feat["properties"]["centroid_lat"]
        assert geom.buffer(0.002).contains(shape({"type": "Point", "coordinates": [lon, lat]}))
    run = json.loads((out / f"{summary['scene']}_run.json").read_text())
    assert run["status"] == "complete" and run["method"] == "mag1c" and run["plume_count"] == summary["plume_count"]
    assert {"read", "filter", "total"} <= set(run["timings_s"]) and run["version"]
    assert (out / f"{summary['scene']}_quicklook.png").stat().st_size > 10_000


def test_uncertainty_emission_rate_and_another_method_into_the_same_folder(plume_run, tmp_path):
    from hyperplex.common.errors import InvalidParameterError
    from hyperplex.geo.detect.emission import emission_rate

    _, paths, summary, out = plume_run
    run = json.loads((out / f"{summary['scene']}_run.json").read_text())
    assert run["emission_rate_method"].startswith("none: no 10 m wind speed")
    for p in summary["plumes"]:
        assert p["emission_rate_kg_h"] is None and 0 < p["ime_sigma_kg"] < p["ime_kg"]
    with pytest.raises(InvalidParameterError, match="'mag1c'.*--method mf.*--overwrite"):
        detect_scene(paths["radiance"], out, DetectConfig(method="mf"))
    windy = detect_scene(
        paths["radiance"], tmp_path, DetectConfig(method="mag1c", wind_speed=4.0, wind_speed_sigma=1.0)
    )
    for p in windy["plumes"]:
        q = emission_rate(p["ime_kg"], p["ime_sigma_kg"], p["area_m2"], 4.0, 1.0)
        assert p["emission_rate_kg_h"] == pytest.approx(q.rate_kg_h)
        assert p["u_eff_m_s"] == pytest.approx(0.36 * 4.0 + 0.43)  # EMIT calibration, HyperGas 1.0
        assert 0 < p["emission_rate_sigma_kg_h"] < p["emission_rate_kg_h"]
    fc = json.loads((tmp_path / f"{windy['scene']}_plumes.geojson").read_text())
    assert all(f["properties"]["emission_rate_kg_h"] > 0 for f in fc["features"])


def test_rerun_skips_complete_scene_unless_overwrite(plume_run):
    _, paths, summary, out = plume_run
    again = detect_scene(paths["radiance"], out, DetectConfig(method="mag1c"))
    assert again["status"] == "skipped"
    assert not list(out.glob(".*tmp-*"))


@pytest.fixture(scope="module")
def clean_scene(tmp_path_factory):
    scene = emit_scene(plumes=0, seed=22, **SCENE)
    assert scene.masks["lookalike"].any() and scene.masks["water"].any()
    return write_emit_scene(scene, tmp_path_factory.mktemp("clean"), stem="EMIT_CLEAN")


@pytest.mark.parametrize("method", list_methods())
def test_no_methane_scene_with_lookalikes_and_water_has_at_most_one_false_plume(tmp_path, clean_scene, method):
    summary = detect_scene(clean_scene["radiance"], tmp_path, DetectConfig(method=method))
    assert summary["plume_count"] <= 1, summary["plumes"]


@pytest.mark.parametrize("method", list_methods())
def test_each_method_finds_both_plumes_and_labels_its_units(tmp_path, emit_small, method):
    scene, paths = emit_small
    summary = detect_scene(paths["radiance"], tmp_path, DetectConfig(method=method))
    units = get_method(method).units
    assert summary["method"] == method and summary["units"] == units
    with rasterio.open(tmp_path / f"{summary['scene']}_plumes.tif") as src:
        assert all(_truth_plume_matches(scene, src.read(1)).values())
        assert src.tags()["units"] == units
    enh = tmp_path / f"{summary['scene']}_{'ch4enh' if units == PPMM else 'ch4score'}.tif"
    assert summary["outputs"]["enhancement"] == str(enh)
    assert not (tmp_path / f"{summary['scene']}_{'ch4score' if units == PPMM else 'ch4enh'}.tif").exists()
    with rasterio.open(enh) as src:
        assert src.descriptions[0] == (
            "CH4 enhancement (ppm·m)" if units == PPMM else f"CH4 detection score ({method}, unitless)"
        )
        assert src.units[0] == units and src.tags(1)["units"] == units
    with rasterio.open(tmp_path / f"{summary['scene']}_ch4unc.tif") as src:
        unc = src.read(1)
        assert src.units[0] == "ppm·m" and 20 < np.nanmedian(unc) < 2000
    fc = json.loads((tmp_path / f"{summary['scene']}_plumes.geojson").read_text())
    assert fc["properties"] == {"method": method, "units": units, "run_id": summary["run_id"]}
    key = "max_ppmm" if units == PPMM else "max_score"
    assert all(p[key] > 0 for p in summary["plumes"])


def test_sensor_geometry_output_with_no_ortho(tmp_path, emit_small):
    scene, paths = emit_small
    summary = detect_scene(paths["radiance"], tmp_path, DetectConfig(method="mf", ortho=False))
    with rasterio.open(tmp_path / f"{summary['scene']}_ch4enh.tif") as src:
        assert (src.height, src.width) == scene.truth.shape and src.crs is None


def test_geotiff_input_in_utm(tmp_path):
    from affine import Affine

    from hyperplex.geo.io import write_geotiff_cube

    scene = emit_scene(lines=96, samples=96, plumes=1, seed=3, plume_strength=2500.0, plume_size=3.0)
    cube = np.moveaxis(scene.radiance, -1, 0)
    window = (scene.wavelengths > 2100) | (abs(scene.wavelengths - 550) < 100)
    tif = write_geotiff_cube(cube[window], scene.channels[window], tmp_path / "aviris_like.tif", crs="EPSG:32613",
                             transform=Affine(60, 0, 600000, 0, -60, 3600000))  # fmt: skip
    summary = detect_scene(tif, tmp_path / "out", DetectConfig(method="mag1c"))
    assert summary["plume_count"] >= 1
    with rasterio.open(tmp_path / "out" / "aviris_like_ch4enh.tif") as src:
        assert src.crs.to_epsg() == 32613 and src.transform.a == 60
    best = max(summary["plumes"], key=lambda p: p["max_ppmm"])
    assert -104.5 < best["centroid_lon"] < -103.5 and 32.3 < best["centroid_lat"] < 32.6  # UTM 13N -> lon/lat
    assert best["area_m2"] == pytest.approx(best["pixels"] * 3600.0)


def test_all_invalid_scene_is_an_error(tmp_path):
    scene = emit_scene(lines=32, samples=32, plumes=0, seed=1)
    scene.radiance[:] = -9999.0
    paths = write_emit_scene(scene, tmp_path, stem="EMIT_EMPTY")
    with pytest.raises(NoValidDataError, match="EMIT_EMPTY"):
        detect_scene(paths["radiance"], tmp_path / "out")


def test_cli_batch_reports_failures_and_continues(tmp_path, emit_small):
    _, paths = emit_small
    bad = tmp_path / "EMIT_bad.nc"
    bad.write_text("not a granule")
    listing = tmp_path / "scenes.txt"
    listing.write_text(f"{paths['radiance']}\n{bad}\n")
    result = CliRunner().invoke(main, ["methane", "detect", f"@{listing}", "--out", str(tmp_path / "out"),
                                       "--method", "mf", "--quiet"])  # fmt: skip
    assert result.exit_code == 1
    assert "FAILED  EMIT_bad:" in result.output and "1 ok, 1 failed" in result.output
    assert list((tmp_path / "out").glob("*_run.json"))


def test_expand_inputs(tmp_path):
    for name in ("a.nc", "b.nc"):
        (tmp_path / name).write_text("")
    assert [p.name for p in expand_inputs([str(tmp_path / "*.nc"), str(tmp_path / "a.nc")])] == ["a.nc", "b.nc"]
    with pytest.raises(FileNotFoundError, match="No file matches"):
        expand_inputs([str(tmp_path / "*.h5")])


def test_two_scene_batch_on_a_local_cluster(tmp_path):
    paths = []
    for seed in (31, 32):
        scene = emit_scene(lines=64, samples=64, plumes=1, seed=seed, plume_strength=3000.0, plume_size=3.0)
        paths.append(write_emit_scene(scene, tmp_path / "in", stem=f"EMIT_BATCH_{seed}")["radiance"])
    result = detect_many([str(tmp_path / "in" / "EMIT_BATCH_3?.nc")], tmp_path / "out", DetectConfig(method="mf"),
                         workers=2)  # fmt: skip
    assert result.ok and [s["scene"] for s in result.summaries] == ["EMIT_BATCH_31", "EMIT_BATCH_32"]
    assert all(s["plume_count"] >= 1 for s in result.summaries)


def test_analyze_an_in_memory_cube():
    from hyperplex.geo.detect import SceneSource, analyze

    scene = emit_scene(lines=96, samples=96, plumes=1, seed=8, plume_strength=3000.0, plume_size=3.0)
    cube = np.moveaxis(scene.radiance, -1, 0)
    result = analyze(SceneSource.from_array(cube, list(scene.wavelengths)), DetectConfig(method="mf"))
    assert result.enhancement.shape == scene.truth.shape and len(result.plumes) == 1
    peak = np.unravel_index(np.argmax(scene.truth), scene.truth.shape)
    assert result.labels[peak] == 1
    assert result.plumes[0]["ime_kg"] is None  # no georeference, no area


def test_missing_geotransform_fails_that_scene_only(tmp_path, emit_small):
    import shutil

    import h5py

    _, paths = emit_small
    bad = tmp_path / "EMIT_NO_GT.nc"
    shutil.copy(paths["radiance"], bad)
    with h5py.File(bad, "r+") as f:
        del f.attrs["geotransform"]
    result = detect_many([paths["radiance"], bad], tmp_path / "out", DetectConfig(method="mf"))
    assert [s["status"] for s in result.summaries] == ["complete", "failed"]
    assert "geotransform" in result.failed[0]["error"] and "EMIT_NO_GT.nc" in result.failed[0]["error"]


def test_ungeoreferenced_geotiff_reports_no_mass(tmp_path):
    from hyperplex.geo.io import write_geotiff_cube

    scene = emit_scene(lines=96, samples=96, plumes=1, seed=3, plume_strength=2500.0, plume_size=3.0)
    tif = write_geotiff_cube(np.moveaxis(scene.radiance, -1, 0), scene.channels, tmp_path / "raw.tif")
    summary = detect_scene(tif, tmp_path / "out", DetectConfig(method="mf"))
    assert summary["plume_count"] >= 1
    assert all(p["ime_kg"] is None and p["area_m2"] is None for p in summary["plumes"])


def test_rerun_with_other_options_recomputes(tmp_path, emit_small):
    _, paths = emit_small
    from hyperplex.common.errors import InvalidParameterError
    from hyperplex.geo.detect.config import DelineationConfig

    first = detect_scene(paths["radiance"], tmp_path, DetectConfig(method="mf"))
    other = DetectConfig(method="mf", delineation=DelineationConfig(min_pixels=12))
    second = detect_scene(paths["radiance"], tmp_path, other)
    assert first["status"] == second["status"] == "complete"
    with pytest.raises(InvalidParameterError, match="method 'mf'"):  # another method: never silently replaced
        detect_scene(paths["radiance"], tmp_path, DetectConfig(method="cem"))
    third = detect_scene(paths["radiance"], tmp_path, DetectConfig(method="cem", overwrite=True))
    run = json.loads((tmp_path / f"{third['scene']}_run.json").read_text())
    assert run["method"] == "cem" and (tmp_path / f"{third['scene']}_ch4score.tif").exists()
    assert detect_scene(paths["radiance"], tmp_path, DetectConfig(method="cem"))["status"] == "skipped"


def test_chunk_tasks_on_a_local_cluster_give_the_same_result(tmp_path, emit_small):
    _, paths = emit_small
    local = detect_scene(paths["radiance"], tmp_path / "local", DetectConfig(method="mf"))
    result = detect_many([paths["radiance"]], tmp_path / "cluster", DetectConfig(method="mf", chunk_lines=16,
                         chunk_tasks=True), workers=2)  # fmt: skip
    assert result.ok and result.summaries[0]["plume_count"] == local["plume_count"]
    with rasterio.open(tmp_path / "local" / f"{local['scene']}_ch4enh.tif") as a:
        with rasterio.open(tmp_path / "cluster" / f"{local['scene']}_ch4enh.tif") as b:
            np.testing.assert_array_equal(a.read(1), b.read(1))


# ---------------------------------------------------------------- the method registry


def _toy_method(cube, wavelengths, fwhm, *, mask=None, window=None, gain=1.0):
    """A method defined outside the package: the column-wise matched filter times ``gain``."""
    from hyperplex.geo.methane import matched_filter

    return gain * np.asarray(matched_filter(cube, wavelengths, fwhm, mask=mask, window=window, group="column"))


@pytest.fixture
def toy_method(monkeypatch):
    """Registers ``toy-mf`` for one test (the registry is restored afterwards)."""
    from hyperplex.geo.methane import registry

    monkeypatch.setattr(registry, "_METHODS", dict(registry._METHODS))
    return registry.register_method("toy-mf", _toy_method, units=PPMM, description="Matched filter x gain.",
                                    defaults={"gain": 1.0})  # fmt: skip


def _offered_methods() -> dict[str, list[str]]:
    """The methods each front end offers: both CLI commands, ``hyperplex.geo.detect.METHODS``, the plugin."""
    import hyperplex.geo.detect
    from hyperplex.geo.cli import demo, methane
    from hyperplex.plugins._methane import method_choices

    def cli_choices(command):
        return list(next(p for p in command.params if p.name == "method").type.choices)

    plugin = sorted(method_choices(), key=list_methods().index)  # the plugin puts the default first
    detect = methane.commands["detect"]
    return {"registry": list_methods(), "detect": cli_choices(detect), "demo": cli_choices(demo),
            "METHODS": list(hyperplex.geo.detect.METHODS), "plugin": plugin}  # fmt: skip


def test_cli_detect_package_and_plugin_offer_the_registered_methods():
    offered = _offered_methods()
    assert all(names == offered["registry"] for names in offered.values()), offered
    assert {"mf", "mag1c", "mag1c-sas", "cem", "ace"} <= set(offered["registry"])


def test_a_registered_method_is_offered_everywhere_and_runs_end_to_end(tmp_path, emit_small, toy_method):
    offered = _offered_methods()
    assert all(names[-1] == "toy-mf" and names == offered["registry"] for names in offered.values()), offered
    _, paths = emit_small
    reference = detect_scene(paths["radiance"], tmp_path / "mf", DetectConfig(method="mf"))
    args = [str(paths["radiance"]), "--out", str(tmp_path / "toy"), "--method", "toy-mf", "-O", "gain=2", "--quiet"]
    result = CliRunner().invoke(main, ["methane", "detect", *args])
    assert result.exit_code == 0, result.output
    run = json.loads((tmp_path / "toy" / f"{reference['scene']}_run.json").read_text())
    assert run["method"] == "toy-mf" and run["units"] == PPMM and run["parameters"]["method_options"] == {"gain": 2}
    with rasterio.open(tmp_path / "mf" / f"{reference['scene']}_ch4enh.tif") as a:
        with rasterio.open(tmp_path / "toy" / f"{reference['scene']}_ch4enh.tif") as b:
            np.testing.assert_allclose(b.read(1), 2 * a.read(1), rtol=1e-6)  # the option reached the function
    assert run["plume_count"] >= 1
