"""A filter run's column statistics, downdated to a pixel subset, equal a fresh pass over that subset."""

from __future__ import annotations

import numpy as np
import pytest

from hyperplex.geo.detect.background_filter import background_filter
from hyperplex.geo.methane import ace, cem, mag1c, matched_filter, target_spectrum
from hyperplex.geo.methane.backend import to_numpy
from hyperplex.geo.methane.options import FilterOptions
from hyperplex.geo.methane.runner import setup
from hyperplex.geo.methane.stats import accumulate
from hyperplex.geo.methane.stats_capture import capture_column_stats, subset_stats

WL = np.linspace(2150.0, 2450.0, 12)
FWHM = np.full(12, 8.5)


@pytest.fixture(scope="module")
def scene():
    rng = np.random.default_rng(3)
    base = 10.0 + rng.random(12)[:, None, None]
    cube = (base * (1 + 0.05 * rng.standard_normal((12, 60, 9)))).astype(np.float32)
    mask = np.zeros((60, 9), bool)
    mask[5:9, 2] = True  # masked pixels stay out of the filter's statistics
    removed = rng.random((60, 9)) < 0.1  # e.g. plume pixels
    removed[:, 4] = rng.random(60) < 0.9  # a column left with few pixels
    return cube, mask, ~mask & ~removed


def _fresh(cube, usable):
    options = FilterOptions(stats_mask=~usable, window=None, fill_value=None, group="column")
    return setup(cube, None, None, options, template=target_spectrum(WL, FWHM))


#: Filters that publish per-column statistics: both Mag1c engines, and MF, CEM and ACE run per column.
PUBLISHERS = {
    "mag1c": lambda cube, mask: mag1c(cube, WL, FWHM, mask=mask, window=None, num_iter=2),
    "mag1c-torch": lambda cube, mask: mag1c(cube, WL, FWHM, mask=mask, window=None, engine="torch", num_iter=2),
    "mf": lambda cube, mask: matched_filter(cube, WL, FWHM, mask=mask, window=None, group="column"),
    "cem": lambda cube, mask: cem(cube, WL, FWHM, mask=mask, window=None, group="column"),
    "ace": lambda cube, mask: ace(cube, WL, FWHM, mask=mask, window=None, group="column"),
}


@pytest.mark.parametrize("method", sorted(PUBLISHERS))
def test_downdated_statistics_equal_a_fresh_pass(scene, method):
    cube, mask, usable = scene
    with capture_column_stats() as captured:
        PUBLISHERS[method](cube, mask)
    assert len(captured) == 1 and captured[0].pixels.tolist() == (~mask).tolist()
    run = _fresh(cube, usable)
    got = subset_stats(captured, run.prepared, usable)
    want = accumulate(run.prepared, run.grouping, run.device)
    assert got is not None
    np.testing.assert_array_equal(to_numpy(got.count), usable.sum(0))  # numpy (compiled) or tensors (torch)
    np.testing.assert_allclose(to_numpy(got.mean), to_numpy(want.mean), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(got.covariance(1)), to_numpy(want.covariance(1)), rtol=1e-9, atol=1e-12)


def test_statistics_of_other_data_are_not_reused(scene):
    cube, mask, usable = scene
    with capture_column_stats() as captured:
        mag1c(cube, WL, FWHM, mask=mask, window=None, num_iter=1)
    assert subset_stats(captured, _fresh(cube.copy(), usable).prepared, usable) is None  # another array
    more = usable.copy()
    more[6, 2] = True  # a pixel the filter left out (masked)
    assert subset_stats(captured, _fresh(cube, more).prepared, more) is None
    fewer_bands = setup(cube, WL, FWHM, FilterOptions(window=(2200.0, 2450.0), fill_value=None, group="column"))
    assert subset_stats(captured, fewer_bands.prepared, usable) is None
    mag1c(cube, WL, FWHM, mask=mask, window=None, num_iter=1)  # outside a capture: nothing recorded
    assert len(captured) == 1


def test_background_filter_is_the_same_with_captured_statistics(scene):
    cube, mask, usable = scene
    template = target_spectrum(WL, FWHM)
    with capture_column_stats() as captured:
        mag1c(cube, WL, FWHM, mask=mask, window=None, num_iter=1)
    fresh = background_filter(cube, template, usable)
    reused = background_filter(cube, template, usable, captured=captured)
    for name in ("mean", "weights", "precision"):
        np.testing.assert_allclose(getattr(reused, name), getattr(fresh, name), rtol=1e-8, err_msg=name)


def test_tile_statistics_are_not_published(scene):
    cube, mask, _ = scene
    with capture_column_stats() as captured:
        matched_filter(cube, WL, FWHM, mask=mask, window=None, group="tile")
        cem(cube, WL, FWHM, mask=mask, window=None)  # tiles by default
    assert captured == []
