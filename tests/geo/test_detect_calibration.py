"""Calibrated vetting, per-pixel uncertainty, IME uncertainty and emission rates (hand-computed cases)."""

import json

import numpy as np
import pytest

from hyperplex.common.errors import InvalidParameterError
from hyperplex.geo.detect.calibration import FEATURES, MODEL_PATH, LogisticModel, load_models, plume_probability
from hyperplex.geo.detect.config import DelineationConfig
from hyperplex.geo.detect.emission import effective_wind, emission_rate
from hyperplex.geo.detect.ime import debiased_enhancement
from hyperplex.geo.detect.uncertainty import enhancement_sigma, ime_sigma_kg
from hyperplex.geo.detect.vetting import confidence, is_rejected
from hyperplex.geo.geodesy import CH4_KG_PER_PPMM_M2
from hyperplex.geo.methane import target_spectrum
from hyperplex.geo.synth import emit_scene

STRONG = {
    "snr": 4.5,
    "peak_snr": 12.0,
    "spectral_score": 0.85,
    "masked_edge_fraction": 0.0,
    "pixels": 350,
    "elongation": 1.3,
    "albedo_contrast": 0.02,
    "stripe_like": False,
}
NOISE = {
    "snr": 1.3,
    "peak_snr": 1.8,
    "spectral_score": 0.05,
    "masked_edge_fraction": 0.0,
    "pixels": 300,
    "elongation": 12.0,
    "albedo_contrast": 0.05,
    "stripe_like": False,
}


def test_logistic_fit_recovers_known_coefficients_and_is_calibrated():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6000, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, -1.0]
    true = LogisticModel((0.0, 1.0, -1.0), (1.0, 2.0, 0.5), (1.5, -1.0, 0.5), -0.3)
    y = (rng.uniform(size=len(x)) < true.probability(x)).astype(float)
    fitted = LogisticModel.fit(x, y, ridge=1e-3)
    np.testing.assert_allclose(fitted.coef, true.coef, atol=0.15)
    assert fitted.intercept == pytest.approx(true.intercept, abs=0.15)
    p = fitted.probability(x)
    for lo in (0.1, 0.3, 0.5, 0.7):  # observed frequency matches the predicted probability
        sel = (p >= lo) & (p < lo + 0.2)
        assert y[sel].mean() == pytest.approx(p[sel].mean(), abs=0.05)
    with pytest.raises(InvalidParameterError, match="both classes"):
        LogisticModel.fit(x, np.ones(len(x)))


def test_shipped_model_was_fitted_on_the_tuning_family_and_separates_plumes_from_noise():
    payload = json.loads(MODEL_PATH.read_text())
    assert tuple(payload["features"]) == FEATURES and "tuning family" in payload["fitted_on"]
    assert payload["command"].startswith("python benchmarks/fit_vetting.py")
    assert "*" in load_models()
    for method in ("mag1c", "mf", "cem", "ace", "mag1c-sas", "some-new-method"):
        assert plume_probability(STRONG, method) > 0.9
        assert plume_probability(NOISE, method) < 0.5
    assert plume_probability({**STRONG, "stripe_like": True}, "mag1c") == 0.0


def test_rejection_keeps_probability_and_reasons():
    cfg = DelineationConfig()
    assert is_rejected(STRONG, cfg) is None and confidence(STRONG)[1] == "high"
    reason = is_rejected(NOISE, cfg)
    assert reason.startswith("plume probability") and "SNR 1.3" in reason
    assert "striping" in is_rejected({**STRONG, "stripe_like": True}, cfg)
    assert "min_snr" in is_rejected(STRONG, DelineationConfig(min_snr=5.0))
    assert is_rejected(NOISE, DelineationConfig(vet=False)) is None
    assert is_rejected(NOISE, DelineationConfig(min_probability=0.0)) is None


def test_emission_rate_against_a_hand_computed_case():
    # EMIT calibration (HyperGas 1.0): U_eff = 0.36 U10 + 0.43 m/s.
    # IME 1000 +- 100 kg over 0.36 km² (L = 600 m), U10 = 5 +- 1 m/s: U_eff = 0.36 * 5 + 0.43 = 2.23 m/s,
    # Q = 2.23 * 1000 / 600 = 3.7167 kg/s = 13380 kg/h; sigma = Q * hypot(0.36 * 1 / 2.23, 100 / 1000) = 2540.8 kg/h
    q = emission_rate(1000.0, 100.0, 360_000.0, 5.0, 1.0)
    assert q.u_eff_m_s == pytest.approx(2.23) and q.length_m == pytest.approx(600.0)
    assert q.rate_kg_h == pytest.approx(13380.0)
    assert q.sigma_kg_h == pytest.approx(13380.0 * np.hypot(0.36 / 2.23, 0.1), rel=1e-9)
    assert q.sigma_kg_h == pytest.approx(2540.8, abs=0.1)
    assert effective_wind(0.0) == pytest.approx(0.43)
    # Sentinel-2 calibration of Varon et al. 2021 by argument: U_eff = 0.33 * 5 + 0.45 = 2.1 m/s -> 12600 kg/h
    assert emission_rate(1000.0, 0.0, 360_000.0, 5.0, slope=0.33, intercept=0.45).rate_kg_h == pytest.approx(12600.0)
    with pytest.raises(InvalidParameterError, match="wind-speed"):
        emission_rate(1000.0, 100.0, 360_000.0, -2.0)
    with pytest.raises(InvalidParameterError, match="area"):
        emission_rate(1000.0, 100.0, 0.0, 5.0)


def test_ime_sigma_adds_pixels_in_quadrature():
    # 4 pixels of 100 ppm·m sigma and 3600 m²: sqrt(4) * 100 * 3600 * factor
    assert ime_sigma_kg(np.full(4, 100.0), 3600.0) == pytest.approx(2 * 100 * 3600 * CH4_KG_PER_PPMM_M2)
    assert ime_sigma_kg(np.array([100.0, np.nan]), 3600.0) == pytest.approx(100 * 3600 * CH4_KG_PER_PPMM_M2)


def _methane_free_window(lines: int) -> tuple:
    """A methane-free 16-sample scene, its 2122-2488 nm window, that window's (B, H, W) cube and template."""
    scene = emit_scene(lines=lines, samples=16, plumes=0, seed=4)
    window = (scene.wavelengths >= 2122) & (scene.wavelengths <= 2488)
    cube = np.moveaxis(scene.radiance[..., window], -1, 0).astype(np.float32)
    return scene, window, cube, target_spectrum(scene.wavelengths[window], scene.fwhm[window])


def test_pixel_uncertainty_matches_the_scatter_of_the_unbiased_estimate():
    """Statistics from the top half of a methane-free scene; the bottom half scatters by the predicted sigma."""
    scene, window, cube, template = _methane_free_window(lines=800)
    top = np.zeros(cube.shape[1:], dtype=bool)
    top[:400] = True
    sigma = enhancement_sigma(cube, template, top)
    estimate = debiased_enhancement(cube, template, ~top, top)
    assert np.isfinite(sigma).all() and 20 < np.median(sigma) < 2000
    z = (estimate / sigma)[~top]
    # out of sample, 400 pixels and ~50 bands inflate the variance by about 400 / 350
    assert 0.95 < np.std(z) < 1.2
    brightness = scene.radiance[..., window].mean(axis=-1)
    assert np.median(sigma[brightness < np.median(brightness)]) > np.median(sigma)  # less light, more noise


def test_pooled_column_statistics_equal_the_scene_statistics():
    """GroupStats.merged (columns with their own shifts, pooled) equals one tile group over the same pixels."""
    import torch

    from hyperplex.geo.methane.options import FilterOptions
    from hyperplex.geo.methane.runner import setup
    from hyperplex.geo.methane.stats import accumulate

    rng = np.random.default_rng(5)
    cube = (100 + 10 * rng.standard_normal((6, 40, 9)) + np.arange(9)[None, None, :]).astype(np.float32)
    background = rng.random((40, 9)) > 0.3

    def stats(group: str):
        options = FilterOptions(stats_mask=~background, window=None, fill_value=None, group=group)
        run = setup(cube, None, None, options, template=np.ones(6))
        return accumulate(run.prepared, run.grouping, run.device)

    pooled, scene = stats("column").merged(), stats("tile")
    assert pooled.count.item() == scene.count.item() == background.sum()
    torch.testing.assert_close(pooled.mean, scene.mean, rtol=1e-10, atol=1e-9)
    torch.testing.assert_close(pooled.covariance(ddof=1), scene.covariance(ddof=1), rtol=1e-9, atol=1e-8)
    expected = np.cov(cube[:, background])
    np.testing.assert_allclose(pooled.covariance(ddof=1)[0].numpy(), expected, rtol=1e-5)


def test_pixel_uncertainty_ignores_a_constant_band():
    """A dead (constant) band is left out of the statistics, as the filters do: the uncertainty stays finite."""
    _, _, cube, template = _methane_free_window(lines=200)
    background = np.ones(cube.shape[1:], dtype=bool)
    clean = enhancement_sigma(cube, template, background)
    cube[3] = 1.0
    with pytest.warns(UserWarning, match="constant"):
        dead = enhancement_sigma(cube, template, background)
    assert np.isfinite(dead).all()
    assert 0.8 < np.median(dead / clean) < 1.25  # one band fewer: about the same noise
