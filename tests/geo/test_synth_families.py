"""Scene families of the detection benchmark: explicit generator settings, kept apart."""

import numpy as np
import pytest

from hyperplex.common.errors import InvalidParameterError
from hyperplex.geo.ch4lut import load_ch4_lut
from hyperplex.geo.methane import target_spectrum
from hyperplex.geo.synth import FAMILIES, SceneSettings, emit_scene, family_scene_kwargs
from hyperplex.geo.synth.spectra import convolved_lut, emit_band_grid


def test_default_settings_are_the_original_generator():
    kw = dict(lines=32, samples=32, plumes=1, seed=3, lookalikes=1)
    a, b = emit_scene(**kw), emit_scene(**kw, settings=SceneSettings())
    np.testing.assert_array_equal(a.radiance, b.radiance)
    assert SceneSettings().is_default and not FAMILIES["evaluation"].is_default


def test_the_two_families_differ_in_every_modelling_choice_and_in_seeds():
    tune, ev = FAMILIES["tuning"], FAMILIES["evaluation"]
    for name in (
        "surfaces",
        "noise_model",
        "albedo_sigma_px",
        "plume_shapes",
        "absorption",
        "srf_shift_nm",
        "striping",
        "lookalike",
    ):
        assert getattr(tune, name) != getattr(ev, name), name
    seeds = {family_scene_kwargs(f, i, methane_free=m)["seed"] for f in FAMILIES for i in range(30) for m in (0, 1)}
    assert len(seeds) == 2 * 30 * 2
    assert family_scene_kwargs("evaluation", 3, methane_free=True)["plumes"] == 0
    with pytest.raises(InvalidParameterError, match="family"):
        family_scene_kwargs("other", 0)
    with pytest.raises(InvalidParameterError, match="absorption"):
        SceneSettings(absorption="cubic")


def test_linear_absorption_is_exp_of_the_mag1c_target():
    """Noise-free, linearised absorption: ln(plume / clean) = k * c with k the filters' own target."""
    kw = dict(
        lines=40,
        samples=40,
        plumes=1,
        plume_strength=3000.0,
        plume_size=4.0,
        seed=2,
        noise=0.0,
        settings=SceneSettings(absorption="linear"),
    )
    with_plume, clean = emit_scene(**kw), emit_scene(**{**kw, "plumes": 0})
    r, c = np.unravel_index(np.argmax(with_plume.truth), with_plume.truth.shape)
    swir = (with_plume.wavelengths > 2122) & (with_plume.wavelengths < 2488)
    ratio = np.log(with_plume.radiance[r, c, swir] / clean.radiance[r, c, swir])
    k = target_spectrum(with_plume.wavelengths, with_plume.fwhm)[swir] / 1e5
    np.testing.assert_allclose(ratio, k * with_plume.truth[r, c], atol=2e-5)


def test_shifted_band_responses_match_the_full_convolution():
    wl, fwhm = emit_band_grid()
    wl = wl.astype(float) + 0.7
    swir = wl > 1430
    full = load_ch4_lut().convolve(wl, fwhm.astype(float))
    np.testing.assert_allclose(convolved_lut(wl, fwhm)[:, swir], full[:, swir], rtol=1e-6)


def test_evaluation_scene_has_fragmented_plumes_striping_and_pads():
    scene = emit_scene(
        lines=48, samples=48, plumes=3, plume_size=2.0, seed=7, lookalikes=2, settings=FAMILIES["evaluation"]
    )
    assert {p["shape"] for p in scene.plumes} <= {"puff", "elongated", "fragmented"}
    assert scene.params["settings"]["lookalike"] == "pads-2260-2330"
    window = (scene.wavelengths > 2122) & (scene.wavelengths < 2400)
    assert np.isfinite(scene.radiance).all() and scene.radiance[..., window].min() > 0
    frag = emit_scene(
        lines=64,
        samples=64,
        plumes=1,
        plume_size=5.0,
        plume_strength=2000.0,
        seed=1,
        noise=0.0,
        settings=SceneSettings(plume_shapes=("fragmented",)),
    )
    smooth = emit_scene(lines=64, samples=64, plumes=1, plume_size=5.0, plume_strength=2000.0, seed=1, noise=0.0)
    assert frag.plumes[0]["shape"] == "fragmented"
    assert frag.truth.sum() < 0.9 * smooth.truth.sum()  # pieces are missing
