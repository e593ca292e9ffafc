"""Grow labelled regions by a few pixels (as ``skimage.segmentation.expand_labels``), label by label.

The plume table grows each candidate by a few pixels for its mass (faint tails). A whole-scene Euclidean
distance transform costs ~0.1 s on a 1280 x 1242 scene whatever the number of plumes; done in a window
around each label, the cost follows the labels' area.
"""

from __future__ import annotations

import numpy as np

from hyperplex.geo.image_ops import bounding_boxes, nearest_label_within, padded_box

__all__ = ["expand_labels_near"]


def expand_labels_near(labels: np.ndarray, distance: int) -> np.ndarray:
    """Every unlabelled pixel within ``distance`` of a label takes its nearest label (Euclidean).

    Same result as ``skimage.segmentation.expand_labels`` (up to the choice between two labels at exactly
    the same distance). Label ``i`` can only reach pixels in its bounding box grown by ``distance``; every
    label pixel within ``distance`` of those lies in the box grown by ``2 * distance``, so a distance
    transform of that window finds their nearest label in the whole image.

    Args:
        labels: ``(H, W)`` integer labels, 0 = none.
        distance: How far to grow, pixels (>= 0).

    Returns:
        The grown labels, same dtype.
    """
    out = labels.copy()
    if distance <= 0:
        return out
    for index, box in bounding_boxes(labels).items():
        window, reach = padded_box(box, 2 * distance, labels.shape), padded_box(box, distance, labels.shape)
        nearest = nearest_label_within(labels[window], distance)
        local = tuple(slice(r.start - w.start, r.stop - w.start) for r, w in zip(reach, window))
        target = out[reach]  # a view: writes go to ``out``
        target[(nearest[local] == index) & (labels[reach] == 0)] = index
    return out
