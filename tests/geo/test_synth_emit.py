"""The synthetic EMIT granule has the real layout, and its truth is what was injected."""

from __future__ import annotations

import json

import h5netcdf
import numpy as np
import pytest
import xarray as xr

from hyperplex.common import InvalidParameterError
from hyperplex.geo.ch4lut import load_ch4_lut
from hyperplex.geo.synth import emit_scene

ROOT_ATTRS = {
    "ncei_template_version", "summary", "keywords", "Conventions", "sensor", "instrument", "platform", "institution",
    "license", "naming_authority", "date_created", "keywords_vocabulary", "stdname_vocabulary", "creator_name",
    "creator_url", "project", "project_url", "publisher_name", "publisher_url", "publisher_email",
    "identifier_product_doi_authority", "flight_line", "time_coverage_start", "time_coverage_end",
    "software_build_version", "software_delivery_version", "product_version", "history", "crosstrack_orientation",
    "easternmost_longitude", "northernmost_latitude", "westernmost_longitude", "southernmost_latitude",
    "spatialResolution", "spatial_ref", "geotransform", "day_night_flag", "title",
}  # fmt: skip


def test_netcdf_layout_matches_emit_l1b(emit_small):
    scene, paths = emit_small
    with h5netcdf.File(paths["radiance"], "r") as f:
        assert set(f.groups) == {"sensor_band_parameters", "location"}
        assert set(f.dimensions) == {"downtrack", "crosstrack", "bands", "ortho_y", "ortho_x"}
        rad = f.variables["radiance"]
        assert rad.dimensions == ("downtrack", "crosstrack", "bands") and rad.dtype == np.float32
        assert rad.attrs["_FillValue"] == -9999 and rad.attrs["units"] == "uW/cm^2/SR/nm"
        sbp, loc = f.groups["sensor_band_parameters"], f.groups["location"]
        assert {k: v.dtype for k, v in sbp.variables.items()} == {
            "wavelengths": np.float32, "fwhm": np.float32, "good_wavelengths": np.uint8}  # fmt: skip
        for name in ("lat", "lon", "elev"):
            assert loc.variables[name].dtype == np.float64
            assert loc.variables[name].dimensions == ("downtrack", "crosstrack")
        for name in ("glt_x", "glt_y"):
            assert loc.variables[name].dtype == np.int32 and loc.variables[name].attrs["_FillValue"] == 0
            assert loc.variables[name].dimensions == ("ortho_y", "ortho_x")
        assert ROOT_ATTRS <= set(f.attrs)
        assert len(f.attrs["geotransform"]) == 6 and 'AUTHORITY["EPSG","4326"]' in f.attrs["spatial_ref"]


def test_opens_with_xarray_like_a_granule(emit_small):
    scene, paths = emit_small
    ds = xr.open_dataset(paths["radiance"], engine="h5netcdf")
    assert ds["radiance"].dims == ("downtrack", "crosstrack", "bands")
    assert np.isnan(ds["radiance"].values).any()  # fill -> NaN through _FillValue
    sbp = xr.open_dataset(paths["radiance"], engine="h5netcdf", group="sensor_band_parameters")
    wl = sbp["wavelengths"].values
    assert wl.size == 285 and abs(wl[0] - 381.0) < 0.1 and abs(wl[-1] - 2492.9) < 0.1


def test_glt_maps_back_to_pixel_locations(emit_small):
    scene, _ = emit_small
    geo = scene.geometry
    valid = geo.glt_x > 0
    assert valid.mean() > 0.3
    rows, cols = np.nonzero(valid)
    gt = geo.geotransform
    lon_cell = gt[0] + (cols + 0.5) * gt[1]
    lat_cell = gt[3] + (rows + 0.5) * gt[5]
    lon_px = geo.lon[geo.glt_y[valid] - 1, geo.glt_x[valid] - 1]
    lat_px = geo.lat[geo.glt_y[valid] - 1, geo.glt_x[valid] - 1]
    # nearest neighbour: each cell's source pixel centre lies within one cell diagonal
    assert np.max(np.hypot(lon_cell - lon_px, lat_cell - lat_px)) <= np.hypot(gt[1], gt[5]) * 0.75


def test_plumes_in_truth_and_absent_elsewhere(emit_small):
    scene, paths = emit_small
    table = json.loads(paths["table"].read_text())
    assert len(table["plumes"]) == 2
    for p in table["plumes"]:
        inside = scene.plume_labels == p["id"]
        assert scene.truth[inside].max() == pytest.approx(p["peak_ppmm"])
        assert p["pixels"] == inside.sum() and p["ime_kg"] > 0
    assert np.all(scene.truth[scene.plume_labels == 0] == 0)
    truth = xr.open_dataset(paths["truth"], engine="h5netcdf")
    np.testing.assert_array_equal(truth["ch4_enhancement"].values, scene.truth)


def test_injected_absorption_follows_the_lut():
    """Noise-free: radiance ratio plume/no-plume equals the LUT transmittance at the true enhancement."""
    kw = dict(lines=48, samples=48, plumes=1, plume_strength=4000.0, plume_size=4.0, seed=2, noise=0.0)
    with_plume = emit_scene(**kw)
    clean = emit_scene(**{**kw, "plumes": 0})
    r, c = np.unravel_index(np.argmax(with_plume.truth), with_plume.truth.shape)
    c_true = float(with_plume.truth[r, c])
    assert 2000.0 < c_true <= 4000.0
    lut = load_ch4_lut()
    bands = lut.convolve(with_plume.wavelengths.astype(float), with_plume.fwhm.astype(float))
    swir = with_plume.wavelengths > 1500
    # Beer-Lambert, log-linear between the 2000 and 4000 ppm·m rows of the LUT
    frac = (c_true - 2000.0) / 2000.0
    log_t = (1 - frac) * np.log(bands[3, swir] / bands[0, swir]) + frac * np.log(bands[4, swir] / bands[0, swir])
    expected = np.exp(log_t)
    ratio = with_plume.radiance[r, c, swir] / clean.radiance[r, c, swir]
    np.testing.assert_allclose(ratio, expected, rtol=2e-3)
    assert ratio.min() < 0.95  # real absorption, not a no-op


def test_hazards_and_determinism():
    kw = dict(lines=64, samples=64, plumes=1, seed=5, fill_columns=2, saturated=2, flares=1, water=1, lookalikes=1)
    a, b = emit_scene(**kw), emit_scene(**kw)
    np.testing.assert_array_equal(a.radiance, b.radiance)
    assert np.all(a.radiance[a.masks["fill"]] == -9999.0)
    assert a.masks["fill"].any(axis=0).sum() == 2
    swir = a.wavelengths > 1945
    assert a.radiance[a.masks["saturated"]][:, swir].max() > 6.0
    b2389 = np.argmin(abs(a.wavelengths - 2389.0))
    assert np.all(a.radiance[a.masks["flare"], b2389] > 1.5)
    b2200 = np.argmin(abs(a.wavelengths - 2200.0))
    land = ~(a.masks["water"] | a.masks["fill"] | a.masks["saturated"] | a.masks["flare"] | (a.truth > 0))
    assert np.median(a.radiance[a.masks["water"] & ~a.masks["fill"], b2200]) < 0.2 * np.median(a.radiance[land, b2200])


def test_bad_arguments_are_explained():
    with pytest.raises(InvalidParameterError, match="at least 16"):
        emit_scene(lines=8, samples=8)
    with pytest.raises(InvalidParameterError, match="plume_size"):
        emit_scene(lines=32, samples=32, plume_size=(20.0, 30.0))


def test_plume_truth_follows_its_documented_shape():
    """Rebuild the truth from the plume's own parameters: an elongated Gaussian floored at 20 ppm·m."""
    from hyperplex.geo.geodesy import ime_kg

    scene = emit_scene(lines=64, samples=64, plumes=1, seed=9, plume_strength=1500.0, plume_size=3.0, noise=0.0)
    p = scene.plumes[0]
    rr, cc = np.mgrid[:64, :64].astype(float)
    ang = np.deg2rad(p["direction_deg"])
    along = (rr - p["row"]) * np.cos(ang) + (cc - p["col"]) * np.sin(ang)
    across = -(rr - p["row"]) * np.sin(ang) + (cc - p["col"]) * np.cos(ang)
    s = p["sigma_px"]
    expected = 1500.0 * np.exp(-0.5 * ((along / (s * p["elongation"])) ** 2 + (across / s) ** 2))
    expected[expected < 20.0] = 0.0
    np.testing.assert_allclose(scene.truth, expected, rtol=1e-5, atol=1e-3)
    assert p["pixels"] == int((expected > 0).sum())
    assert p["ime_kg"] == pytest.approx(ime_kg(expected[expected > 0], scene.pixel_area_m2), rel=1e-5)
