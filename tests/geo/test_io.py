"""Readers: EMIT NetCDF (lazy, GLT ortho), ENVI and GeoTIFF cubes keep wavelengths."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine

from hyperplex.common import ChannelSet, DataNotFoundError, FileFormatError
from hyperplex.common.errors import ChannelMismatchError
from hyperplex.geo.io import (
    channels_from_envi_header,
    envi_header_fields,
    open_cube,
    open_emit,
    open_envi,
    open_geotiff,
    sniff_cube,
    write_geotiff_cube,
)
from hyperplex.geo.ortho import apply_glt


def test_open_emit_is_lazy_and_channel_first(emit_small):
    scene, paths = emit_small
    ds = open_emit(paths["radiance"], chunks={"downtrack": 32})
    rad = ds["radiance"]
    assert rad.dims == ("band", "downtrack", "crosstrack") and rad.chunks is not None
    cs = ChannelSet.from_xarray(rad)
    np.testing.assert_allclose(cs.wavelengths, scene.wavelengths, rtol=1e-6)
    np.testing.assert_allclose(cs.fwhm, scene.fwhm, rtol=1e-6)
    band = rad.isel(band=200).values
    expected = np.where(scene.radiance[:, :, 200] == -9999, np.nan, scene.radiance[:, :, 200])
    np.testing.assert_array_equal(band, expected)


def test_ortho_equals_manual_glt_gather(emit_small):
    scene, paths = emit_small
    ortho = open_emit(paths["radiance"], ortho=True)
    geo = scene.geometry
    assert ortho["radiance"].shape == (285, *geo.glt_x.shape)
    assert tuple(ortho.rio.transform().to_gdal()) == pytest.approx(geo.geotransform)
    assert ortho.rio.crs.to_epsg() == 4326
    i, j = np.argwhere(geo.glt_x > 0)[len(np.argwhere(geo.glt_x > 0)) // 2]
    src = scene.radiance[geo.glt_y[i, j] - 1, geo.glt_x[i, j] - 1]
    np.testing.assert_array_equal(ortho["radiance"].values[:, i, j], np.where(src == -9999, np.nan, src))
    assert np.isnan(ortho["radiance"].values[:, geo.glt_x == 0]).all()


def test_apply_glt_rejects_mismatched_data():
    with pytest.raises(ValueError, match="GLT points to line"):
        apply_glt(np.zeros((4, 4)), np.array([[5]]), np.array([[5]]))


def test_geotiff_round_trip_keeps_wavelengths(tmp_path):
    cs = ChannelSet.from_wavelengths([2200.0, 2300.0, 2400.0], [8.5, 8.6, 8.7])
    data = np.random.default_rng(0).random((3, 20, 30)).astype(np.float32)
    path = write_geotiff_cube(data, cs, tmp_path / "cube.tif", crs="EPSG:32614",
                              transform=Affine(30, 0, 500000, 0, -30, 3500000))  # fmt: skip
    da = open_geotiff(path)
    assert da.dims == ("band", "y", "x") and ChannelSet.from_xarray(da) == cs
    np.testing.assert_array_equal(da.values, data)
    assert sniff_cube(path) == "geotiff" and ChannelSet.from_xarray(open_cube(path)) == cs


def test_envi_round_trip_keeps_wavelengths(tmp_path):
    import spectral.io.envi as envi

    cs = ChannelSet.from_wavelengths([2200.0, 2300.0, 2400.0, 2450.0], [8.5, 8.6, 8.7, 8.8])
    data = np.random.default_rng(1).random((15, 12, 4)).astype(np.float32)
    data[0, 0, :] = -9999
    envi.save_image(str(tmp_path / "rdn.hdr"), data, metadata=envi_header_fields(cs), interleave="bil")
    da = open_envi(tmp_path / "rdn.hdr")
    assert da.dims == ("band", "y", "x") and ChannelSet.from_xarray(da) == cs
    expected = np.moveaxis(data, -1, 0).copy()
    expected[expected == -9999] = np.nan
    np.testing.assert_array_equal(da.values, expected)
    assert sniff_cube(tmp_path / "rdn.img") == "envi"


def test_clear_errors_for_missing_and_wrong_files(tmp_path):
    with pytest.raises(DataNotFoundError, match="no such file"):
        open_emit(tmp_path / "EMIT_missing.nc")
    junk = tmp_path / "junk.nc"
    junk.write_text("not netcdf")
    with pytest.raises(FileFormatError, match="junk.nc"):
        open_emit(junk)
    with pytest.raises(FileFormatError, match="not a recognised cube"):
        open_cube(junk)
    assert sniff_cube(junk) is None and sniff_cube(tmp_path) is None and sniff_cube(tmp_path / "nope") is None


def test_missing_group_is_named(tmp_path):
    import h5netcdf

    path = tmp_path / "EMIT_fake.nc"
    with h5netcdf.File(path, "w") as f:
        f.dimensions = {"downtrack": 2, "crosstrack": 2, "bands": 3}
        f.create_variable("radiance", ("downtrack", "crosstrack", "bands"), "f4")
        f.create_group("sensor_band_parameters")
    with pytest.raises(FileFormatError, match="sensor_band_parameters.*wavelengths"):
        open_emit(path)


def test_emit_swath_is_not_mistaken_for_a_georeferenced_grid(emit_small):
    """The granule's geotransform belongs to the GLT grid: rioxarray must not apply it to the swath."""
    import rioxarray  # noqa: F401  (registers .rio; it reads a 'transform' attribute in Affine order)
    from rioxarray.exceptions import MissingSpatialDimensionError

    _, paths = emit_small
    cube = open_cube(paths["radiance"])
    assert "transform" not in cube.attrs and len(cube.attrs["geotransform"]) == 6
    with pytest.raises(MissingSpatialDimensionError):
        cube.rio.resolution()


def test_true_color_picks_rgb_bands_and_blacks_out_nodata():
    from hyperplex.geo.quicklook import true_color

    cs = ChannelSet.from_wavelengths([460.0, 550.0, 640.0, 2300.0])
    cube = np.stack([np.full((4, 4), v, np.float32) for v in (1.0, 2.0, 3.0, 4.0)])
    cube += np.arange(16, dtype=np.float32).reshape(4, 4)  # a ramp so the stretch is defined
    cube[:, 0, 0] = np.nan
    rgb = true_color(cube, cs)
    assert rgb.shape == (4, 4, 3) and rgb.min() >= 0 and rgb.max() <= 1
    assert np.all(rgb[0, 0] == 0) and rgb[3, 3, 0] == 1.0  # red is the 640 nm band, brightest pixel saturates


def test_envi_header_round_trip():
    cs = ChannelSet.from_wavelengths([400.0, 500.0, 600.0, 700.0], [5.0] * 4, good=[True, False, True, True])
    header = {"bands": "4", **envi_header_fields(cs)}
    assert channels_from_envi_header(header) == cs
    with pytest.raises(ChannelMismatchError):
        channels_from_envi_header({**header, "bands": "5"})


def test_envi_header_unknown_units_are_guessed_from_values():
    header = {"bands": "2", "wavelength": ["0.5", "2.3"], "wavelength units": "Unknown"}
    np.testing.assert_allclose(channels_from_envi_header(header).wavelengths, [500.0, 2300.0])
