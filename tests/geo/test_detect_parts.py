"""Building blocks of detection: masks, delineation, spectral vetting (each against known truth)."""

from __future__ import annotations

import h5netcdf
import numpy as np
import pytest

from hyperplex.common import FileFormatError, InvalidParameterError
from hyperplex.geo.detect.config import DelineationConfig
from hyperplex.geo.detect.delineate import delineate, nan_gaussian, robust_background
from hyperplex.geo.detect.masks import read_l2a_mask
from hyperplex.geo.detect.vetting import spectral_score
from hyperplex.geo.synth import emit_scene
from hyperplex.geo.synth.spectra import ch4_log_transmittance, emit_band_grid, endmember_reflectance


def test_masks_flag_the_injected_hazards():
    from hyperplex.geo.detect import DetectConfig, SceneSource, analyze

    scene = emit_scene(lines=96, samples=96, plumes=1, seed=4, fill_columns=2, saturated=2, flares=2, water=1)
    cube = np.moveaxis(scene.radiance, -1, 0)
    masks = analyze(SceneSource.from_array(cube, scene.channels), DetectConfig(method="mf")).masks
    truth = scene.masks
    assert np.array_equal(masks.layers["fill"], truth["fill"])
    assert masks.layers["saturated"][truth["saturated"]].all()
    assert masks.layers["flare"][truth["flare"]].all()
    water = truth["water"] & ~truth["fill"]
    assert masks.layers["dark"][water].mean() > 0.95
    land = ~(masks.excluded | (scene.truth > 0))
    assert land.mean() > 0.6  # masks stay local
    assert not masks.excluded[scene.truth > 500].any()  # a plume is never masked as dark or saturated


def test_debiased_enhancement_recovers_a_linear_plume_even_without_column_background():
    from hyperplex.geo.detect.ime import debiased_enhancement

    rng = np.random.default_rng(5)
    bands, h, w = 20, 120, 12
    mean = 1.0 + 0.1 * rng.random(bands)
    template = -np.linspace(0.2, 1.5, bands)  # per 1e5 ppm·m
    cube = mean[:, None, None] * (1 + 0.01 * rng.standard_normal((bands, h, w)))
    truth = np.zeros((h, w))
    truth[50:60, 3:6] = 2000.0
    cube *= 1 + (template[:, None, None] / 1e5) * truth  # linear Beer-Lambert in the target's units
    region = truth > 0
    background = ~region
    background[:, 5] = False  # column 5 has no plume-free pixel: scene-wide statistics take over
    est = debiased_enhancement(cube.astype(np.float32), template, region, background)
    assert np.isnan(est[~region]).all()
    assert np.nanmean(est[region]) == pytest.approx(2000.0, rel=0.05)
    assert np.isfinite(est[:, 5][region[:, 5]]).all()


def test_l2a_mask_reads_cloud_cirrus_water(tmp_path):
    flags = np.zeros((6, 5, 8), np.float32)
    flags[1, 1, 0] = 1  # cloud
    flags[2, 2, 2] = 1  # water
    flags[3, 3, 5] = 0.3  # AOD: not a flag we use
    path = tmp_path / "EMIT_L2A_MASK.nc"
    with h5netcdf.File(path, "w") as f:
        f.dimensions = {"downtrack": 6, "crosstrack": 5, "bands": 8}
        f.create_variable("mask", ("downtrack", "crosstrack", "bands"), data=flags)
    mask = read_l2a_mask(path, (6, 5))
    assert mask.sum() == 2 and mask[1, 1] and mask[2, 2]
    with pytest.raises(FileFormatError, match="matching granule"):
        read_l2a_mask(path, (7, 5))


def test_nan_gaussian_ignores_invalid_pixels():
    values = np.full((20, 20), 5.0)
    valid = np.ones_like(values, bool)
    valid[5:8, 5:8] = False
    values[~valid] = 1e9
    out = nan_gaussian(values, valid, 2.0)
    assert np.allclose(out[valid], 5.0) and np.isnan(out[~valid]).all()


def test_robust_background_handles_sparse_maps():
    rng = np.random.default_rng(0)
    dense = rng.normal(0, 10, 10_000)
    assert robust_background(dense)[1] == pytest.approx(10, rel=0.1)
    sparse = np.where(rng.random(10_000) < 0.8, 0.0, np.abs(rng.normal(0, 100, 10_000)))
    assert robust_background(sparse)[1] > 10  # MAD alone would give 0


def test_delineation_finds_blobs_with_hysteresis():
    rng = np.random.default_rng(1)
    enh = rng.normal(0, 50, (80, 80))
    yy, xx = np.mgrid[:80, :80]
    enh += 1500 * np.exp(-((yy - 30) ** 2 + (xx - 40) ** 2) / (2 * 3.0**2))
    enh += 200 * np.exp(-((yy - 65) ** 2 + (xx - 15) ** 2) / (2 * 3.0**2))  # below min_peak
    found = delineate(enh, np.ones_like(enh, bool), DelineationConfig())
    assert len(found.peaks) == 1
    assert found.labels[30, 40] == 1 and found.labels[65, 15] == 0
    assert (found.labels == 1).sum() > 40


def test_spectral_score_separates_methane_from_a_2330nm_mineral():
    wl, fwhm = emit_band_grid()
    sel = (wl >= 2122) & (wl <= 2488)
    knots, tau = ch4_log_transmittance(wl.astype(float), fwhm.astype(float))
    from hyperplex.geo.methane import target_spectrum

    template = target_spectrum(wl[sel], fwhm[sel])
    background = endmember_reflectance(wl.astype(float))[0][sel] * 2.0
    methane = background * np.exp(tau[2, sel])  # 1000 ppm·m
    mineral = background * (1 - 0.12 * np.exp(-0.5 * ((wl[sel] - 2335.0) / 30.0) ** 2))
    score_ch4, ppmm = spectral_score(methane, background, template)
    score_min, _ = spectral_score(mineral, background, template)
    assert score_ch4 > 0.9 and ppmm == pytest.approx(1000, rel=0.25)
    assert score_min < 0.3


# ---------------------------------------------------------------- method registry and configuration


def test_builtin_methods_name_the_filters_with_their_units_and_groupings():
    from hyperplex.geo import methane
    from hyperplex.geo.methane.registry import PPMM, SCORE, get_method, list_methods

    table = {"mf": (methane.matched_filter, PPMM, "column"), "mag1c": (methane.mag1c, PPMM, "column"),
             "mag1c-sas": (methane.mag1c_sas, PPMM, None), "cem": (methane.cem, SCORE, "tile"),
             "ace": (methane.ace, SCORE, "tile")}  # fmt: skip
    assert list_methods()[:5] == list(table)
    for name, (function, units, group) in table.items():
        entry = get_method(name)
        assert entry.load() is function and entry.units == units and entry.is_score == (units == SCORE)
        assert (entry.grouping[0] if entry.grouping else None) == group
    assert list_methods(PPMM) == ["mf", "mag1c", "mag1c-sas"]
    assert list_methods(SCORE) == ["cem", "ace", "hypersegformer", "hyperefficientvit"]
    with pytest.raises(InvalidParameterError, match="kind"):
        list_methods("ppm m")


def test_registry_rejects_unknown_names_and_bad_entries():
    from hyperplex.geo.methane.registry import PPMM, get_method, register_method

    with pytest.raises(InvalidParameterError, match="Unknown methane method 'nope'; choose one of: mf, mag1c, "):
        get_method("nope")
    with pytest.raises(InvalidParameterError, match="already registered"):
        register_method("mf", "hyperplex.geo.methane:matched_filter", units=PPMM, description="again")
    for bad in ({"units": "ppm m"}, {"grouping": ("row",)}, {"function": "hyperplex.geo.methane.mag1c"}):
        kwargs = {"function": "m:f", "units": PPMM, "description": "x", **bad}
        with pytest.raises(InvalidParameterError, match=next(iter(bad))):
            register_method("new-method", **kwargs)


def test_method_options_and_grouping_are_checked_against_the_method():
    from hyperplex.geo.detect import DetectConfig

    assert DetectConfig(method="mag1c", method_options={"num_iter": 5}).method_options == {"num_iter": 5}
    with pytest.raises(InvalidParameterError, match=r"no option \['iterations'\].*'num_iter'"):
        DetectConfig(method="mag1c", method_options={"iterations": 5})
    with pytest.raises(InvalidParameterError, match="set by the pipeline"):
        DetectConfig(method="mf", method_options={"window": None})
    with pytest.raises(InvalidParameterError, match="'mag1c-sas' has a fixed statistics grouping"):
        DetectConfig(method="mag1c-sas", group="column")
    with pytest.raises(InvalidParameterError, match="one of \\('tile', 'column'\\)"):
        DetectConfig(method="cem", group="row")


def test_config_from_flat_options():
    from hyperplex.geo.detect import DetectConfig

    cfg = DetectConfig.from_options(method="cem", dark_fraction=0.1, sigma=2.0, vet=False, window=(2100.0, 2400.0))
    assert (cfg.method, cfg.masks.dark_fraction, cfg.delineation.sigma, cfg.delineation.vet) == ("cem", 0.1, 2.0, False)
    assert cfg.units == "score" and cfg.delineation.threshold == DelineationConfig().threshold
    with pytest.raises(InvalidParameterError, match="Unknown detection options \\['sigmaa'\\]"):
        DetectConfig.from_options(sigmaa=2.0)


def test_peak_and_mean_read_enhancement_or_score():
    from hyperplex.geo.detect.plume_table import peak_and_mean

    assert peak_and_mean({"max_ppmm": 900.0, "mean_ppmm": 400.0, "max_score": None}) == (900.0, 400.0)
    assert peak_and_mean({"max_ppmm": None, "mean_ppmm": None, "max_score": 0.8, "mean_score": 0.5}) == (0.8, 0.5)


def test_plume_map_labels_plumes_and_colours_up_to_their_peak(tmp_path):
    from PIL import Image

    from hyperplex.geo.quicklook import colorize, compose_map, write_plume_map

    rgb = np.full((120, 100, 3), 0.5, np.float32)
    enh = np.zeros((120, 100), np.float32)
    labels = np.zeros((120, 100), np.int32)
    enh[20:30, 20:30], labels[20:30, 20:30] = 3000.0, 1
    enh[80:84, 60:64], labels[80:84, 60:64] = 800.0, 2
    plumes = [{"id": 1, "ime_kg": 900.0, "max_ppmm": 3000.0}, {"id": 2, "ime_kg": 40.0, "max_ppmm": 800.0}]
    image = compose_map(rgb, enh, labels, 100.0, 3000.0)
    top = (colorize(np.array([3000.0]), 100.0, 3000.0)[0] * 255).astype(int)
    assert np.abs(image[25, 25].astype(int) - (0.9 * top + 0.1 * 0.8 * 127.5)).max() <= 2  # peak: top colour
    assert (image[20, 25] == [0, 255, 255]).all()  # outline
    assert (image[60, 10] == int(0.8 * 0.5 * 255)).all()  # background dimmed, not painted
    path = write_plume_map(tmp_path / "map.png", rgb, enh, labels, plumes, lo=100.0, pixel_m=60.0, title="t")
    with Image.open(path) as im:
        assert im.size[0] > 100 + 200 and im.size[1] >= 120  # map plus the inset column


@pytest.mark.parametrize("fraction", [0.0, 1e-4, 0.01, 0.3])
@pytest.mark.parametrize("pixels", [0, 1, 3, 6])
def test_dilate_equals_binary_dilation(fraction, pixels):
    """Sparse masks are stamped, dense ones ORed with their shifts: both give ndimage's disk dilation (edges too)."""
    from scipy import ndimage

    from hyperplex.geo.image_ops import dilate_disk

    mask = np.random.default_rng(int(fraction * 1e4) + pixels).random((120, 90)) < fraction
    mask[0, 0] = mask[119, 45] = mask[60, 89] = fraction > 0  # set pixels on the edges
    yy, xx = np.mgrid[-pixels : pixels + 1, -pixels : pixels + 1]
    expected = ndimage.binary_dilation(mask, structure=(yy**2 + xx**2) <= pixels**2) if pixels else mask
    np.testing.assert_array_equal(dilate_disk(mask, pixels), expected)
