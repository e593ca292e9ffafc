"""The few image operations of the detection path, without ``scipy.ndimage`` (its import costs a command 0.3 s).

Each gives what its ``scipy.ndimage`` namesake gives (``tests/geo/test_image_ops.py`` compares them):
Gaussian smoothing (separable, zero or nearest edges: ``gaussian_filter``), 8-connected labelling in raster
order (``label``; a compiled union-find with numba, scipy's without it), bounding boxes (``find_objects``),
dilation by a disk (``binary_dilation``), the nearest label within a few pixels (``distance_transform_edt``
with its indices) and bilinear sampling with nearest edges (``map_coordinates(order=1, mode="nearest")``).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

__all__ = [
    "bilinear",
    "bounding_boxes",
    "compile_kernels",
    "dilate_disk",
    "disk_offsets",
    "gaussian_smooth",
    "gaussian_weights",
    "label8",
    "nearest_label_within",
    "padded_box",
]


def gaussian_weights(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """The normalised Gaussian taps ``scipy.ndimage`` uses: radius ``int(truncate * sigma + 0.5)``."""
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    weights = np.exp(-0.5 * (x / float(sigma)) ** 2)
    return weights / weights.sum()


def gaussian_smooth(values: np.ndarray, sigma: float, *, edge: str = "constant") -> np.ndarray:
    """Gaussian smoothing along every axis, float64 (``ndimage.gaussian_filter(values, sigma, mode=edge)``).

    Args:
        values: A line or an image (other shapes, or no numba: ``scipy.ndimage``).
        sigma: Standard deviation, pixels (> 0).
        edge: ``"constant"`` (zeros beyond the edge) or ``"nearest"`` (the edge value repeated).
    """
    values = np.asarray(values, dtype=np.float64)
    compiled = _smooth_kernel() if values.ndim in (1, 2) else None
    if compiled is None:
        from scipy import ndimage

        return ndimage.gaussian_filter(values, sigma, mode=edge)
    weights = gaussian_weights(sigma)
    out = np.ascontiguousarray(values.reshape(-1, values.shape[-1]))  # a line is a one-line image
    for along_rows in (True, False) if values.ndim == 2 else (False,):
        smoothed = np.empty_like(out)
        compiled(out, weights, edge == "nearest", along_rows, smoothed)
        out = smoothed
    return out.reshape(values.shape)


@functools.cache
def _smooth_kernel() -> Any:
    """The compiled smoothing of an image along one axis (numba), cache loaded; None without numba."""
    from hyperplex.geo.methane.mag1c_filter.jit import kernel, load_cached, numba_or_none

    numba = numba_or_none()
    if numba is None:
        return None

    @kernel(parallel=True)
    def smooth(x, weights, nearest, along_rows, out):  # pragma: no cover - compiled
        height, width = x.shape
        radius = weights.size // 2
        for i in numba.prange(height):
            if along_rows:  # axis 0: whole lines, the inner loop runs along memory
                for c in range(width):
                    out[i, c] = x[i, c] * weights[radius]
                for j in range(1, radius + 1):
                    lo, hi = i - j, i + j
                    if nearest:
                        lo, hi = max(lo, 0), min(hi, height - 1)
                    for c in range(width):
                        a = x[lo, c] if lo >= 0 else 0.0
                        b = x[hi, c] if hi < height else 0.0
                        out[i, c] += (a + b) * weights[radius + j]
            else:  # axis 1
                for c in range(width):
                    acc = x[i, c] * weights[radius]
                    for j in range(1, radius + 1):
                        lo, hi = c - j, c + j
                        if nearest:
                            lo, hi = max(lo, 0), min(hi, width - 1)
                        a = x[i, lo] if lo >= 0 else 0.0
                        b = x[i, hi] if hi < width else 0.0
                        acc += (a + b) * weights[radius + j]
                    out[i, c] = acc

    load_cached(smooth)
    return smooth


@functools.cache
def _label_kernel() -> Any:
    """The compiled labelling (numba), its disk-cached machine code loaded; None without numba."""
    from hyperplex.geo.methane.mag1c_filter.jit import kernel, load_cached, numba_or_none

    if numba_or_none() is None:
        return None

    @kernel()
    def label(mask, labels, parent):  # pragma: no cover - compiled
        height, width = mask.shape
        provisional = 0
        for r in range(height):
            for c in range(width):
                if not mask[r, c]:
                    labels[r, c] = 0
                    continue
                best = 0
                for dr, dc in ((-1, -1), (-1, 0), (-1, 1), (0, -1)):  # the neighbours already visited
                    rr, cc = r + dr, c + dc
                    if rr < 0 or cc < 0 or cc >= width or labels[rr, cc] == 0:
                        continue
                    root = labels[rr, cc]
                    while parent[root] != root:
                        parent[root] = parent[parent[root]]
                        root = parent[root]
                    if best == 0:
                        best = root
                    elif root != best:
                        low, high = min(root, best), max(root, best)
                        parent[high] = low
                        best = low
                if best == 0:
                    provisional += 1
                    parent[provisional] = provisional
                    best = provisional
                labels[r, c] = best
        final = np.zeros(provisional + 1, dtype=np.int32)
        count = 0
        for r in range(height):  # raster order of each component's first pixel, as scipy numbers them
            for c in range(width):
                root = labels[r, c]
                if root == 0:
                    continue
                while parent[root] != root:
                    root = parent[root]
                if final[root] == 0:
                    count += 1
                    final[root] = count
                labels[r, c] = final[root]
        return count

    load_cached(label)
    return label


def compile_kernels() -> None:
    """Load or compile the labelling and smoothing kernels (run by ``jit.warm_up``); no-op without numba."""
    label8(np.eye(3, dtype=bool))
    for edge in ("constant", "nearest"):
        gaussian_smooth(np.eye(3), 1.0, edge=edge)


def label8(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a 2-D ``mask``: int32 labels 1..n in raster order of their first pixel, and n.

    As ``ndimage.label(mask, structure=np.ones((3, 3)))``.
    """
    mask = np.ascontiguousarray(mask, dtype=bool)
    compiled = _label_kernel()
    if compiled is None:
        from scipy import ndimage

        labels, n = ndimage.label(mask, structure=np.ones((3, 3), bool))
        return labels.astype(np.int32, copy=False), int(n)
    labels = np.empty(mask.shape, dtype=np.int32)
    parent = np.empty(int(mask.sum()) + 1, dtype=np.int32)
    return labels, int(compiled(mask, labels, parent))


def bounding_boxes(labels: np.ndarray) -> dict[int, tuple[slice, ...]]:
    """Bounding box of every label present in ``labels`` (non-negative integer ids, 0 = none), by id.

    As ``ndimage.find_objects`` (without the None of absent ids).
    """
    flat = np.flatnonzero(labels)
    if flat.size == 0:
        return {}
    ids = labels.ravel()[flat]
    order = np.argsort(ids, kind="stable")
    ids, coords = ids[order], np.unravel_index(flat[order], labels.shape)
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    lows = [np.minimum.reduceat(axis, starts) for axis in coords]
    highs = [np.maximum.reduceat(axis, starts) + 1 for axis in coords]
    return {int(ids[s]): tuple(slice(int(lo[k]), int(hi[k])) for lo, hi in zip(lows, highs))
            for k, s in enumerate(starts)}  # fmt: skip


def padded_box(box: tuple[slice, ...], pad: int, shape: tuple[int, ...]) -> tuple[slice, ...]:
    """``box`` grown by ``pad`` pixels on every side, clipped to an array of ``shape``."""
    return tuple(slice(max(s.start - pad, 0), min(s.stop + pad, n)) for s, n in zip(box, shape))


def disk_offsets(radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column offsets of the pixels within ``radius`` of the centre (the structuring disk)."""
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    inside = yy**2 + xx**2 <= radius**2
    return yy[inside], xx[inside]


def dilate_disk(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` grown by a disk of ``radius`` pixels (``ndimage.binary_dilation(mask, structure=disk)``).

    A sparse mask (saturation, flares: a few hundred pixels in a scene) is grown by stamping the disk around
    each set pixel, which costs next to nothing; a dense one is ORed with its shifts over the disk.
    """
    if radius <= 0 or not mask.any():
        return mask.copy()
    offsets = disk_offsets(radius)
    rows, cols = np.nonzero(mask)
    height, width = mask.shape
    if rows.size * offsets[0].size <= mask.size // 8:
        y, x = rows[:, None] + offsets[0], cols[:, None] + offsets[1]
        inside = (y >= 0) & (y < height) & (x >= 0) & (x < width)
        out = np.zeros_like(mask)
        out[y[inside], x[inside]] = True
        return out
    out = mask.copy()
    for dy, dx in zip(*offsets):
        if windows := _shift_windows(mask.shape, int(dy), int(dx)):
            out[windows[0]] |= mask[windows[1]]
    return out


def _shift_windows(shape: tuple[int, int], dy: int, dx: int) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
    """Windows ``(to, from)`` that pair every pixel ``p`` with ``p - (dy, dx)``; None for no shift or no overlap."""
    height, width = shape
    if (dy == 0 and dx == 0) or abs(dy) >= height or abs(dx) >= width:
        return None
    to = (slice(max(dy, 0), height - max(-dy, 0)), slice(max(dx, 0), width - max(-dx, 0)))
    return to, (slice(max(-dy, 0), height - max(dy, 0)), slice(max(-dx, 0), width - max(dx, 0)))


def bilinear(image: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``image`` sampled at fractional ``(rows, cols)``, bilinear, clamped to the edge pixels.

    As ``ndimage.map_coordinates(image, [rows, cols], order=1, mode="nearest")``.
    """
    height, width = image.shape
    r = np.clip(np.asarray(rows, dtype=np.float64), 0, height - 1)
    c = np.clip(np.asarray(cols, dtype=np.float64), 0, width - 1)
    r0, c0 = np.minimum(np.floor(r).astype(np.intp), height - 2), np.minimum(np.floor(c).astype(np.intp), width - 2)
    r0, c0 = np.maximum(r0, 0), np.maximum(c0, 0)
    fr, fc = r - r0, c - c0
    r1, c1 = np.minimum(r0 + 1, height - 1), np.minimum(c0 + 1, width - 1)
    top = image[r0, c0] * (1 - fc) + image[r0, c1] * fc
    bottom = image[r1, c0] * (1 - fc) + image[r1, c1] * fc
    return top * (1 - fr) + bottom * fr


def nearest_label_within(labels: np.ndarray, distance: int) -> np.ndarray:
    """Every unlabelled pixel within ``distance`` of a label takes the nearest one (Euclidean; 0 beyond).

    As the nearest feature of ``ndimage.distance_transform_edt(labels == 0, return_indices=True)`` cut at
    ``distance``, up to the choice between labels at exactly the same distance (here: the first offset in
    order of distance, then row, then column).
    """
    out = labels.copy()
    dy, dx = disk_offsets(distance)
    for k in np.argsort(dy**2 + dx**2, kind="stable"):
        if windows := _shift_windows(labels.shape, -int(dy[k]), -int(dx[k])):  # each pixel looks at p + offset
            target, source = out[windows[0]], labels[windows[1]]
            take = (target == 0) & (source != 0)
            target[take] = source[take]
    return out
