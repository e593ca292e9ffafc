"""The compiled read pass gives the numpy read's filter cube, RGB and masks, on every EMIT storage layout."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

import hyperplex.geo.detect.scene as scene_module
from hyperplex.common.errors import FileFormatError
from hyperplex.geo.detect.block_kernel import BandPositions, block_kernel, scan_lines
from hyperplex.geo.detect.config import DetectConfig
from hyperplex.geo.detect.filter_bands import filter_bands
from hyperplex.geo.detect.masks import SceneMasks
from hyperplex.geo.detect.source import open_source
from hyperplex.geo.io.emit import EmitReader
from hyperplex.geo.synth import write_emit_scene

pytestmark = pytest.mark.skipif(block_kernel() is None, reason="numba is not installed")


@pytest.fixture(scope="module")
def granules(emit_small, tmp_path_factory):
    """The small hazard scene with odd pixels (NaN, all-zero, one fill band, a bright flare) in three layouts."""
    scene, paths = emit_small
    out = tmp_path_factory.mktemp("block_kernel")
    odd = out / "contiguous.nc"
    odd.write_bytes(paths["radiance"].read_bytes())
    with h5py.File(odd, "r+") as f:
        rad = f["radiance"]
        rad[5, 7, 250] = np.nan  # one NaN band: fill
        rad[6, 8, :] = 0.0  # all zero: fill
        rad[7, 9, 260] = -9999.0  # one fill band: fill
        rad[8, 10, 35] = -9999.0  # fill in a quicklook band only: NaN in the RGB, not fill
        data = rad[...]
    gzip = write_emit_scene(scene, out, "gzip", chunks=(32, 24, 100), compression=4)["radiance"]
    big = out / "big_endian.nc"
    with h5py.File(gzip, "r+") as f:
        f["radiance"][...] = data
    with h5py.File(big, "w") as f:
        f.create_dataset("radiance", data=data.astype(">f4"))
    for name in ("sensor_band_parameters", "location"):  # the big-endian copy needs the rest of the granule
        with h5py.File(odd, "r") as src, h5py.File(big, "a") as dst:
            src.copy(src[name], dst, name)
    with h5py.File(odd, "r") as src, h5py.File(big, "a") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
    return {"contiguous": odd, "gzip": gzip, "contiguous_be": big}


def _read(path, monkeypatch, compiled: bool):
    source, cfg = open_source(path), DetectConfig()
    filt, aux = filter_bands(source.channels, cfg, source.path), scene_module._aux_bands(source, cfg)
    with monkeypatch.context() as m:
        if not compiled:
            m.setattr(scene_module, "block_kernel", lambda: None)
        return scene_module._read(source, filt, aux, cfg)


@pytest.mark.parametrize("layout", ["contiguous", "gzip", "contiguous_be"])
@pytest.mark.parametrize("threads", ["1", "3"])
def test_compiled_read_equals_numpy_read(granules, monkeypatch, layout, threads):
    monkeypatch.setenv("OMP_NUM_THREADS", threads)
    cube, rgb, masks = _read(granules[layout], monkeypatch, compiled=True)
    ref_cube, ref_rgb, ref_masks = _read(granules[layout], monkeypatch, compiled=False)
    np.testing.assert_array_equal(cube, ref_cube)
    np.testing.assert_array_equal(rgb, ref_rgb)
    for name, layer in ref_masks.layers.items():
        np.testing.assert_array_equal(masks.layers[name], layer, err_msg=name)
    np.testing.assert_allclose(masks.brightness, ref_masks.brightness, rtol=1e-6, equal_nan=True)
    # the hazards and the odd pixels are there to be found
    assert masks.layers["fill"][5, 7] and masks.layers["fill"][6, 8] and masks.layers["fill"][7, 9]
    assert not masks.layers["fill"][8, 10] and np.isnan(rgb[:, 8, 10]).sum() == 1
    assert masks.layers["saturated"].any() and masks.layers["flare"].any() and masks.layers["fill"].sum() >= 96
    # the cube is stored pixel-major: a pixel's filter bands are adjacent
    assert cube.strides[0] == cube.itemsize and cube.base is not None


def test_scan_error_in_a_thread_names_the_file(granules, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    cut = tmp_path / "cut.nc"
    with h5py.File(granules["contiguous"], "r") as src, h5py.File(cut, "w") as dst:
        dst.create_dataset("radiance", data=src["radiance"][...])  # contiguous, little-endian, data last
    with EmitReader(cut) as reader:
        raw = reader.raw_rows
        os.truncate(cut, cut.stat().st_size - 80 * 285 * 4 * 3)
        h, w = raw.shape[:2]
        positions = BandPositions(np.arange(240, 250), np.array([11, 23, 35]), np.arange(211, 283), 270)
        cube = np.empty((h, w, 10), np.float32)
        rgb = np.zeros((3, h, w), np.float32)
        with pytest.raises(FileFormatError, match=r"cut\.nc.*'radiance' lines .* truncated"):
            list(scan_lines(raw, reader.row_blocks(16), positions, cube, rgb, SceneMasks((h, w)), DetectConfig().masks))
