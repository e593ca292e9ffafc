"""Accuracy of the methane filters on a synthetic EMIT-like scene with known plumes (hyperplex.geo.synth)."""

import warnings

import numpy as np
import pytest

from hyperplex.geo.methane import ace, cem, mag1c, mag1c_sas, matched_filter
from hyperplex.geo.synth import emit_scene


@pytest.fixture(scope="module")
def scene():
    return emit_scene(
        lines=768,
        samples=48,
        plumes=3,
        plume_strength=(800.0, 3000.0),
        plume_size=(3.0, 5.0),
        seed=11,
        fill_columns=1,
    )


@pytest.fixture(scope="module")
def results(scene):
    run = {
        "mf_column": lambda: matched_filter(scene.radiance, scene.wavelengths, scene.fwhm, channel_axis=-1),
        "mf_tile": lambda: matched_filter(scene.radiance, scene.wavelengths, scene.fwhm, channel_axis=-1, group="tile"),
        "mag1c": lambda: mag1c(scene.radiance, scene.wavelengths, scene.fwhm, channel_axis=-1),
        # 10 % of this small scene is ~3700 sample pixels, the count a 1 % sample gives on ~1/4 of an EMIT scene
        "mag1c_sas": lambda: mag1c_sas(scene.radiance, scene.wavelengths, scene.fwhm, channel_axis=-1, sample=0.1),
        "cem": lambda: cem(scene.radiance, scene.wavelengths, scene.fwhm, channel_axis=-1),
        "ace": lambda: ace(scene.radiance, scene.wavelengths, scene.fwhm, channel_axis=-1),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warnings on a well-posed scene
        return {name: fn() for name, fn in run.items()}


def _background(scene):
    return (scene.truth < 1) & ~scene.masks["fill"]


def test_scene_has_strong_plumes(scene):
    assert len(scene.plumes) == 3
    assert min(p["peak_ppmm"] for p in scene.plumes) >= 500


@pytest.mark.parametrize("method", ["mf_tile", "mag1c", "mag1c_sas"])
def test_plume_core_mean_within_15_percent(scene, results, method):
    out = results[method]
    for plume in scene.plumes:
        core = (scene.plume_labels == plume["id"]) & (scene.truth >= 0.5 * plume["peak_ppmm"])
        assert core.sum() >= 5
        ratio = np.nanmean(out[core]) / scene.truth[core].mean()
        assert abs(ratio - 1) <= 0.15, (method, plume["peak_ppmm"], ratio)


@pytest.mark.parametrize(("method", "limit"), [("mf_column", 50), ("mf_tile", 50), ("mag1c", 50), ("mag1c_sas", 60)])
def test_background_mean_near_zero(scene, results, method, limit):
    assert abs(np.nanmean(results[method][_background(scene)])) <= limit


def test_mag1c_background_noise_at_least_2x_lower_than_mf(scene, results):
    bg = _background(scene)
    assert np.nanstd(results["mf_column"][bg]) >= 2.0 * np.nanstd(results["mag1c"][bg])


def test_fill_columns_are_nan(scene, results):
    fill = scene.masks["fill"]
    assert fill.any()
    for out in results.values():
        assert np.isnan(out[fill]).all() and np.isfinite(out[~fill]).all()


def _auroc(score, positive, negative):
    a, b = score[positive], score[negative]
    ranks = np.argsort(np.argsort(np.concatenate([a, b]))) + 1
    return (ranks[: a.size].sum() - a.size * (a.size + 1) / 2) / (a.size * b.size)


@pytest.mark.parametrize("method", ["cem", "ace", "mag1c", "mf_column"])
def test_detectors_rank_strong_plume_pixels_above_background(scene, results, method):
    strong = (scene.truth >= 1000) & ~scene.masks["fill"]
    assert _auroc(results[method], strong, _background(scene)) >= 0.95
