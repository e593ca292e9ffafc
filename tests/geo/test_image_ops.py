"""The detection path's image operations give what scipy.ndimage gives (they replace it there)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage

from hyperplex.geo import image_ops


def _masks():
    """Random masks of many shapes and densities, single lines and columns included."""
    rng = np.random.default_rng(11)
    shapes = [(1, 17), (23, 1), (1, 1), *[tuple(rng.integers(2, 60, size=2)) for _ in range(14)]]
    return [rng.random(shape) > rng.uniform(0.2, 0.9) for shape in shapes]


@pytest.mark.parametrize("index", range(17))
def test_labels_are_scipys_in_raster_order(index):
    mask = _masks()[index]
    ours, n = image_ops.label8(mask)
    reference, m = ndimage.label(mask, structure=np.ones((3, 3), bool))
    assert (n, ours.dtype) == (m, np.int32)
    np.testing.assert_array_equal(ours, reference)


def test_a_spiral_merges_into_one_label():
    """Branches that meet late (a U shape, a spiral) end up one component: the union-find merges them."""
    mask = np.zeros((9, 9), bool)
    mask[1, 1:8], mask[1:8, 7], mask[7, 1:8], mask[3:8, 1], mask[3, 1:6], mask[3:6, 5] = (
        True,
        True,
        True,
        True,
        True,
        True,
    )
    labels, n = image_ops.label8(mask)
    assert n == 1 and set(np.unique(labels)) == {0, 1}


@pytest.mark.parametrize("index", range(17))
def test_boxes_dilation_and_smoothing_match(index):
    mask = _masks()[index]
    labels, _ = ndimage.label(mask)
    boxes = image_ops.bounding_boxes(labels)
    assert boxes == {i: box for i, box in enumerate(ndimage.find_objects(labels), 1) if box is not None}
    for radius in (1, 2, 6):
        yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
        disk = yy**2 + xx**2 <= radius**2
        np.testing.assert_array_equal(image_ops.dilate_disk(mask, radius), ndimage.binary_dilation(mask, disk))
    values = np.random.default_rng(index).standard_normal(mask.shape)
    for sigma in (0.6, 1.5, 3.0):
        expected = ndimage.gaussian_filter(values, sigma, mode="constant")
        np.testing.assert_allclose(image_ops.gaussian_smooth(values, sigma), expected, rtol=0, atol=1e-13)
        nearest = ndimage.gaussian_filter(values, sigma, mode="nearest")
        np.testing.assert_allclose(image_ops.gaussian_smooth(values, sigma, edge="nearest"), nearest, atol=1e-13)
        line = values[0]  # 1-D (numpy's loop; images take the compiled one)
        expected = ndimage.gaussian_filter1d(line, sigma, mode="nearest")
        np.testing.assert_allclose(image_ops.gaussian_smooth(line, sigma, edge="nearest"), expected, atol=1e-13)


def test_bilinear_matches_map_coordinates_inside_and_beyond_the_edges():
    rng = np.random.default_rng(5)
    for shape in ((1, 9), (7, 1), (13, 17)):
        image = rng.standard_normal(shape)
        rows, cols = rng.uniform(-3, shape[0] + 2, 200), rng.uniform(-3, shape[1] + 2, 200)
        rows[:5], cols[:5] = np.arange(5) % shape[0], np.arange(5) % shape[1]  # exact pixel centres too
        expected = ndimage.map_coordinates(image, [rows, cols], order=1, mode="nearest")
        np.testing.assert_allclose(image_ops.bilinear(image, rows, cols), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("distance", [1, 3])
def test_nearest_label_is_the_distance_transforms_up_to_ties(distance):
    labels, _ = ndimage.label(_masks()[5] & (np.random.default_rng(2).random(_masks()[5].shape) > 0.7))
    ours = image_ops.nearest_label_within(labels, distance)
    dist, (r, c) = ndimage.distance_transform_edt(labels == 0, return_indices=True)
    reference = np.where(dist <= distance, labels[r, c], 0)
    np.testing.assert_array_equal(ours > 0, reference > 0)
    for y, x in zip(*np.nonzero(ours != reference)):  # a tie: both labels at the nearest distance
        d = [np.hypot(*(np.argwhere(labels == v) - (y, x)).T).min() for v in (ours[y, x], reference[y, x])]
        assert d[0] == pytest.approx(d[1])


def test_the_detect_command_imports_no_scipy_ndimage():
    code = ("import sys; import hyperplex.geo.detect.scene, hyperplex.geo.quicklook; "
            "print(sorted(m for m in sys.modules if m.startswith(('scipy.ndimage', 'skimage'))))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
