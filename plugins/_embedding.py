"""PCA colour map of a feature map, for display. Qt-free and torch-free.

The feature maps come from :func:`hyperplex.common.models.tiled_feature_map` (tiled inference lives
in the library); this module only turns a ``(D, h, w)`` map into an RGB image.
"""

from __future__ import annotations

import numpy as np

from hyperplex.common.errors import InvalidParameterError

__all__ = ["pca_rgb"]


def pca_rgb(features: np.ndarray, *, percentiles: tuple[float, float] = (1.0, 99.0)) -> tuple[np.ndarray, np.ndarray]:
    """Project a ``(D, h, w)`` feature map on its first three principal components, as RGB.

    Each component is scaled to ``[0, 1]`` between its ``percentiles``. Component signs are fixed so
    the largest-magnitude loading is positive (the colours do not flip between runs).

    Args:
        features: Feature map; non-finite cells become black.
        percentiles: Contrast stretch per component.

    Returns:
        ``(rgb (h, w, 3) float32, explained_variance_ratio (3,))``.

    Raises:
        InvalidParameterError: If the map is not 3-D or has no finite cell.
    """
    if features.ndim != 3:
        raise InvalidParameterError(f"`features` must be (D, h, w); got shape {features.shape}.")
    d, h, w = features.shape
    flat = features.reshape(d, -1).T.astype(np.float64)  # (N, D)
    valid = np.all(np.isfinite(flat), axis=1)
    if not valid.any():
        raise InvalidParameterError("The feature map has no finite cell to run PCA on.")
    centred = flat[valid] - flat[valid].mean(axis=0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    k = min(3, vt.shape[0])
    comps = vt[:k] * np.sign(vt[:k][np.arange(k), np.argmax(np.abs(vt[:k]), axis=1)])[:, None]
    scores = np.zeros((flat.shape[0], 3))
    scores[valid, :k] = centred @ comps.T
    lo, hi = np.percentile(scores[valid], percentiles, axis=0)
    rgb = np.clip((scores - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0, 1.0)
    rgb[~valid] = 0.0
    variance = s**2
    ratio = np.zeros(3)
    ratio[:k] = variance[:k] / max(variance.sum(), 1e-300)
    return rgb.reshape(h, w, 3).astype(np.float32), ratio
