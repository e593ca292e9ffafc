"""Generic acquisition nuisances for training images (known effects of each switch)."""

from __future__ import annotations

import numpy as np
import pytest

from hyperplex.common.errors import InvalidParameterError
from hyperplex.common.train.nuisance import Nuisance, add_nuisance

OFF = dict(gamma=(1.0, 1.0), spill=0.0, background=0.0, blur=0.0, photons=None)


def _image(seed: int = 0, c: int = 4, size: int = 48) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((c, size, size)) < 0.1) * rng.uniform(100, 1000, (c, 1, 1)) + 50.0


def test_all_effects_off_is_the_identity_and_same_seed_same_result():
    image = _image()
    np.testing.assert_allclose(add_nuisance(image, np.random.default_rng(1), Nuisance(**OFF)), image, rtol=1e-6)
    a, b = (add_nuisance(image, np.random.default_rng(5)) for _ in range(2))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, image)


def test_spill_adds_a_bounded_fraction_of_one_other_channel():
    image = _image()
    out = add_nuisance(image, np.random.default_rng(2), Nuisance(**{**OFF, "spill": 0.2}))
    rel = (image - 50.0) / np.percentile(image - 50.0, 99, axis=(1, 2), keepdims=True)  # the bright-level scale
    bright = np.percentile(image - 50.0, 99, axis=(1, 2))
    for j in range(4):
        extra = (out[j] - image[j]) / bright[j]
        fits = []
        for k in range(4):
            if k != j:
                alpha = float((extra * rel[k]).sum() / (rel[k] ** 2).sum())
                fits.append((np.abs(extra - alpha * rel[k]).max(), alpha))
        residual, alpha = min(fits)
        assert residual < 1e-4 and 0 <= alpha < 0.2  # exactly alpha x one other channel


def test_autofluorescence_is_shared_blur_smooths_and_noise_scales_with_photons():
    image = np.full((3, 64, 64), 100.0)
    image[:, 20:40, 20:40] = 1100.0
    auto = add_nuisance(image, np.random.default_rng(3), Nuisance(**{**OFF, "background": 0.5}))
    extra = auto - image
    assert extra.min() >= -1e-3 and extra.max() > 10  # added, positive
    corr = np.corrcoef(extra.reshape(3, -1))
    assert corr[0, 1] > 0.99 and corr[1, 2] > 0.99  # one field for every channel
    blurred = add_nuisance(image, np.random.default_rng(4), Nuisance(**{**OFF, "blur": 1.5}))
    assert np.abs(np.diff(blurred, axis=2)).max() < np.abs(np.diff(image, axis=2)).max()
    flat = np.full((1, 128, 128), 1000.0)
    flat[0, 0, 0] = 0.0  # floor 0, bright level 1000
    few = add_nuisance(flat, np.random.default_rng(5), Nuisance(**{**OFF, "photons": (10.0, 10.0)}))
    many = add_nuisance(flat, np.random.default_rng(5), Nuisance(**{**OFF, "photons": (1000.0, 1000.0)}))
    assert few[0].std() == pytest.approx(1000 / np.sqrt(10), rel=0.1)  # Poisson: std = bright / sqrt(photons)
    assert many[0].std() == pytest.approx(1000 / np.sqrt(1000), rel=0.1)


def test_bad_ranges_and_shapes_are_refused():
    with pytest.raises(InvalidParameterError, match="non-negative"):
        Nuisance(spill=-0.1)
    with pytest.raises(InvalidParameterError, match="photons"):
        Nuisance(photons=(10.0, 1.0))
    with pytest.raises(InvalidParameterError, match="C, H, W"):
        add_nuisance(np.ones((8, 8)), np.random.default_rng(0))
