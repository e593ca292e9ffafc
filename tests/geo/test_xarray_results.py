"""The notebook path: filter results keep coordinates, CRS and provenance; lazy orthorectification."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from hyperplex.common.errors import InvalidParameterError
from hyperplex.geo.io import open_emit
from hyperplex.geo.methane import cem, matched_filter
from hyperplex.geo.ortho import apply_glt
from hyperplex.geo.ortho_lazy import OrthoGrid, orthorectify


class _TaskCounter:
    """Counts dask tasks run while active (0 means nothing was read or computed)."""

    def __enter__(self):
        from dask.callbacks import Callback

        self.count = 0
        self._cb = Callback(pretask=lambda *a: setattr(self, "count", self.count + 1))
        self._cb.__enter__()
        return self

    def __exit__(self, *exc):
        self._cb.__exit__(*exc)


def test_sensor_geometry_result_keeps_lat_lon_and_records_the_method(emit_small):
    scene, paths = emit_small
    rad = open_emit(paths["radiance"], chunks={})["radiance"]
    assert rad["lat"].dims == ("downtrack", "crosstrack")
    out = matched_filter(rad, shrinkage=0.1)
    assert out.dims == ("downtrack", "crosstrack") and out.attrs["units"] == "ppm·m"
    np.testing.assert_array_equal(out["lat"].values, scene.geometry.lat)
    np.testing.assert_array_equal(out["lon"].values, scene.geometry.lon)
    assert out.attrs["method"] == "matched_filter"
    params = json.loads(out.attrs["parameters"])
    assert params["shrinkage"] == 0.1 and params["window"] == [2122.0, 2488.0] and "cube" not in params
    assert cem(rad).attrs["units"] == "1" and cem(rad).attrs["method"] == "cem"


def test_lazy_ortho_open_reads_nothing_and_equals_the_eager_path(emit_small):
    _, paths = emit_small
    with _TaskCounter() as counter:
        lazy = open_emit(paths["radiance"], chunks={}, ortho=True)
    assert counter.count == 0 and lazy["radiance"].chunks is not None
    eager = open_emit(paths["radiance"], ortho=True)
    np.testing.assert_array_equal(lazy["radiance"].values, eager["radiance"].values)
    np.testing.assert_array_equal(lazy["elev"].values, eager["elev"].values)
    assert lazy.rio.transform() == eager.rio.transform() and lazy.rio.crs == eager.rio.crs
    np.testing.assert_array_equal(lazy["y"].values, eager["y"].values)


def test_filter_on_the_lazy_ortho_cube_writes_on_the_granule_grid(emit_small, tmp_path):
    import rasterio

    scene, paths = emit_small
    out = matched_filter(open_emit(paths["radiance"], chunks={}, ortho=True)["radiance"])
    out.rio.to_raster(tmp_path / "mf.tif")
    with rasterio.open(tmp_path / "mf.tif") as f:
        assert f.transform.to_gdal() == pytest.approx(scene.geometry.geotransform)
        assert f.crs.to_epsg() == 4326 and f.shape == scene.geometry.glt_x.shape
        assert f.tags()["units"] == "ppm·m" and f.tags()["method"] == "matched_filter"
        np.testing.assert_array_equal(f.read(1), out.values)


@pytest.mark.parametrize("chunks", [7, 512])
def test_orthorectify_any_result_lazily(emit_small, chunks):
    scene, paths = emit_small
    ds = open_emit(paths["radiance"], chunks={})
    enh = matched_filter(ds["radiance"])
    geo = scene.geometry
    for geometry in (ds, paths["radiance"]):
        ortho = orthorectify(enh, geometry, chunks=chunks)
        assert ortho.dims == ("y", "x") and ortho.chunks is not None and ortho.attrs["units"] == "ppm·m"
        np.testing.assert_array_equal(ortho.values, apply_glt(enh.values, geo.glt_x, geo.glt_y))
        assert ortho.rio.transform().to_gdal() == pytest.approx(geo.geotransform)
    labels = (enh.fillna(0) > 500).astype(np.uint16)
    ortho_labels = orthorectify(labels, ds, chunks=chunks)
    assert ortho_labels.dtype == np.uint16 and (ortho_labels.values[geo.glt_x == 0] == 0).all()


def test_orthorectify_rejects_cropped_data_and_missing_grids(emit_small):
    _, paths = emit_small
    ds = open_emit(paths["radiance"], chunks={})
    with pytest.raises(InvalidParameterError, match="cropped or transposed"):
        orthorectify(ds["radiance"].isel(downtrack=slice(0, 10)), ds)
    with pytest.raises(InvalidParameterError, match="glt_x"):
        orthorectify(ds["radiance"], ds.drop_vars(["glt_x", "glt_y"]))
    with pytest.raises(InvalidParameterError, match="chunks"):
        orthorectify(ds["radiance"], OrthoGrid.of(ds), chunks=0)


_RSS_SCRIPT = textwrap.dedent(
    """
    import sys
    from hyperplex.geo.io import open_emit
    ds = open_emit(sys.argv[1], chunks={}, ortho=True)
    assert ds["radiance"].chunks is not None
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            print(int(line.split()[1]) // 1024)
    """
)


def peak_rss_mb_to_open(path: str) -> int:
    """Peak RSS (MB, VmHWM) of a fresh interpreter that opens ``path`` lazily on its ortho grid."""
    proc = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(path)], capture_output=True, text=True, check=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    return int(proc.stdout.split()[-1])


def test_lazy_ortho_open_memory_does_not_grow_with_the_cube(emit_small):
    _, paths = emit_small
    assert peak_rss_mb_to_open(paths["radiance"]) < 1024


@pytest.mark.skipif("HYPERPLEX_FULL_EMIT" not in os.environ, reason="set HYPERPLEX_FULL_EMIT to a full-size granule")
def test_full_scene_opens_lazily_under_1_gb():
    assert peak_rss_mb_to_open(os.environ["HYPERPLEX_FULL_EMIT"]) <= 1024
