"""`methane detect` products validate: the plume GeoJSON against the committed JSON Schema, every COG with rasterio."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from jsonschema import Draft202012Validator

import hyperplex.geo.detect as detect_pkg
from hyperplex.common.cli import main

SCHEMA = json.loads((Path(detect_pkg.__file__).parent / "plumes.schema.json").read_text())
#: Per product: band units tag, nodata, dtype.
COGS = {
    "_ch4enh.tif": ("ppm·m", "nan", "float32"),
    "_ch4score.tif": ("score", "nan", "float32"),
    "_ch4unc.tif": ("ppm·m", "nan", "float32"),
    "_plumes.tif": (None, 0.0, "uint16"),
}


@pytest.fixture(scope="module")
def runs(emit_small, tmp_path_factory):
    """Two runs of the CLI: Mag1c with a wind speed, CEM (a score method) without."""
    _, paths = emit_small
    out = {}
    for name, extra in {"mag1c": ["--wind-speed", "3", "--wind-speed-sigma", "1"], "cem": ["--method", "cem"]}.items():
        folder = tmp_path_factory.mktemp(f"products_{name}")
        result = CliRunner().invoke(main, ["methane", "detect", str(paths["radiance"]), "--out", str(folder), "--quiet",
                                           *extra])  # fmt: skip
        assert result.exit_code == 0, result.output
        out[name] = folder
    return out


def _collection(folder: Path) -> dict:
    (path,) = folder.glob("*_plumes.geojson")
    return json.loads(path.read_text())


def test_schema_is_valid_and_rejects_broken_plumes(runs):
    Draft202012Validator.check_schema(SCHEMA)
    good = _collection(runs["mag1c"])
    assert good["features"], "the scene has plumes to validate"
    validator = Draft202012Validator(SCHEMA)
    broken = {
        "missing IME": lambda p: p["properties"].pop("ime_kg"),
        "probability > 1": lambda p: p["properties"].update(confidence_score=1.5),
        "a point": lambda p: p.update(geometry={"type": "Point", "coordinates": [0.0, 0.0]}),
        "ppm·m map without max_ppmm": lambda p: p["properties"].pop("max_ppmm"),
        "undocumented property": lambda p: p["properties"].update(colour="red"),
        "latitude out of range": lambda p: p["properties"].update(centroid_lat=95.0),
    }
    for what, damage in broken.items():
        bad = copy.deepcopy(good)
        damage(bad["features"][0])
        assert list(validator.iter_errors(bad)), what


@pytest.mark.parametrize("name", ["mag1c", "cem"])
def test_plume_geojson_validates_against_the_schema(runs, name):
    fc = _collection(runs[name])
    errors = sorted(Draft202012Validator(SCHEMA).iter_errors(fc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])
    assert fc["properties"]["method"] == name and fc["features"]
    for feat in fc["features"]:
        props = feat["properties"]
        assert feat["id"] == props["id"]
        polygons = [feat["geometry"]["coordinates"]] if feat["geometry"]["type"] == "Polygon" else feat["geometry"][
            "coordinates"]  # fmt: skip
        assert all(ring[0] == ring[-1] for poly in polygons for ring in poly), "linear rings are closed (RFC 7946)"
        windless = name == "cem"
        rates = (props["emission_rate_kg_h"], props["emission_rate_sigma_kg_h"], props["u_eff_m_s"])
        assert all(v is None for v in rates) if windless else all(v > 0 for v in rates)
        assert props["ime_kg"] > 0 and props["ime_sigma_kg"] >= 0


@pytest.mark.parametrize("name", ["mag1c", "cem"])
def test_every_cog_states_grid_units_nodata_and_dtype(runs, name):
    fc = _collection(runs[name])
    tifs = sorted(runs[name].glob("*.tif"))
    suffixes = {next(s for s in COGS if t.name.endswith(s)) for t in tifs}
    assert suffixes == {"_ch4enh.tif" if name == "mag1c" else "_ch4score.tif", "_ch4unc.tif", "_plumes.tif"}
    for tif in tifs:
        units, nodata, dtype = COGS[next(s for s in COGS if tif.name.endswith(s))]
        with rasterio.open(tif) as src:
            assert src.crs.to_epsg() == 4326, tif.name
            t = src.transform
            assert t.a > 0 and t.e < 0 and t.b == 0 and t.d == 0, (tif.name, t)
            assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG", tif.name
            assert src.dtypes == (dtype,) and src.count == 1, tif.name
            assert np.isnan(src.nodata) if nodata == "nan" else src.nodata == nodata, tif.name
            if units is not None:
                assert src.units == (units,) and src.tags()["units"] == units, tif.name
            assert src.tags()["run_id"] == fc["properties"]["run_id"] and src.tags()["method"] == name
            left, bottom, right, top = src.bounds
            for feat in fc["features"]:
                x0, y0, x1, y1 = feat["properties"]["bbox"]
                assert left - 1e-9 <= x0 <= x1 <= right + 1e-9 and bottom - 1e-9 <= y0 <= y1 <= top + 1e-9
            if tif.name.endswith("_plumes.tif"):
                ids = set(np.unique(src.read(1)).tolist()) - {0}
                assert ids == {f["id"] for f in fc["features"]}
