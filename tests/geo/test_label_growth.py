"""Growing labels window by window matches skimage's whole-image expand_labels."""

import numpy as np
import pytest
from scipy import ndimage
from skimage.segmentation import expand_labels

from hyperplex.geo.detect.label_growth import expand_labels_near
from hyperplex.geo.image_ops import bounding_boxes, padded_box


def _blobs(seed: int, shape: tuple[int, int] = (120, 150), count: int = 25) -> np.ndarray:
    """Labelled random blobs, some touching the edges, some a few pixels apart."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, dtype=bool)
    for _ in range(count):
        r, c = rng.integers(0, shape[0]), rng.integers(0, shape[1])
        h, w = rng.integers(1, 9, size=2)
        mask[r : r + h, c : c + w] = rng.random((h, w))[: shape[0] - r, : shape[1] - c] > 0.3
    labels, _ = ndimage.label(mask)
    return labels.astype(np.int32)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("distance", [1, 3, 5])
def test_matches_skimage_up_to_ties(seed: int, distance: int) -> None:
    labels = _blobs(seed)
    ours, reference = expand_labels_near(labels, distance), expand_labels(labels, distance)
    assert ours.dtype == labels.dtype
    np.testing.assert_array_equal(ours > 0, reference > 0)  # the same pixels are reached
    np.testing.assert_array_equal(ours[labels > 0], labels[labels > 0])  # labelled pixels keep their label
    rows, cols = np.nonzero(ours != reference)
    for r, c in zip(rows, cols):  # where the two differ, both labels are at the same (nearest) distance
        d = [np.hypot(*(np.argwhere(labels == v) - (r, c)).T).min() for v in (ours[r, c], reference[r, c])]
        assert d[0] == pytest.approx(d[1])


def test_zero_distance_and_empty() -> None:
    labels = _blobs(0)
    np.testing.assert_array_equal(expand_labels_near(labels, 0), labels)
    empty = np.zeros((5, 7), np.int32)
    np.testing.assert_array_equal(expand_labels_near(empty, 3), empty)
    assert bounding_boxes(empty) == {}


def test_boxes_and_padding() -> None:
    labels = np.zeros((10, 12), np.int32)
    labels[2:4, 5:9], labels[8, 0] = 1, 3
    boxes = bounding_boxes(labels)
    assert set(boxes) == {1, 3}
    assert boxes[1] == (slice(2, 4), slice(5, 9))
    assert padded_box(boxes[3], 2, labels.shape) == (slice(6, 10), slice(0, 3))
