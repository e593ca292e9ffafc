"""Cells of an H&E slide and their mean predicted markers, block by block (memory bounded for any slide).

Nuclei come from the hematoxylin channel (colour deconvolution, :func:`skimage.color.rgb2hed`), a
global threshold, and a distance-transform watershed that splits touching nuclei; cells are the nuclei
grown by a few micrometres (:func:`skimage.segmentation.expand_labels`). Or bring your own labels.

The slide is cut into blocks with a halo wider than a cell; a block keeps the cells whose centroid
lies in its core, so every cell is measured once, whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from hyperplex.common.arrays import materialize

__all__ = ["CellBlock", "hematoxylin", "hematoxylin_threshold", "iter_cell_blocks", "measure_cells", "segment_nuclei"]


#: Block core and halo in pixels.
BLOCK, HALO = 1024, 48


def hematoxylin(rgb: np.ndarray) -> np.ndarray:
    """Hematoxylin optical density ``(H, W)`` float32 of a ``(3, H, W)`` uint8 RGB image."""
    from skimage.color import rgb2hed

    return rgb2hed(np.moveaxis(np.asarray(rgb), 0, -1))[..., 0].astype(np.float32)


def hematoxylin_threshold(preview: np.ndarray) -> float:
    """Otsu threshold of the hematoxylin density over a (downsampled) view of the whole slide."""
    from skimage.filters import threshold_otsu

    hema = hematoxylin(preview)
    return float(threshold_otsu(hema)) if np.ptp(hema) > 0 else float(hema.max()) + 1.0


def segment_nuclei(rgb: np.ndarray, threshold: float, pixel_size_um: float = 0.5) -> np.ndarray:
    """Nucleus labels ``(H, W)`` int32 (0 = background) of an RGB tile.

    Args:
        rgb: ``(3, H, W)`` uint8.
        threshold: Hematoxylin density above which a pixel is nuclear (:func:`hematoxylin_threshold`).
        pixel_size_um: Pixel size; sets the smallest nucleus (8 µm²) and the peak spacing (2 µm).
    """
    from scipy import ndimage
    from skimage.feature import peak_local_max
    from skimage.morphology import remove_small_objects
    from skimage.segmentation import watershed

    hema = ndimage.gaussian_filter(hematoxylin(rgb), 1.0)
    mask = ndimage.binary_fill_holes(hema > threshold)
    mask = remove_small_objects(mask, max_size=max(int(8.0 / pixel_size_um**2), 4))
    distance = ndimage.distance_transform_edt(mask)
    spacing = max(round(2.0 / pixel_size_um), 2)
    peaks = peak_local_max(distance, min_distance=spacing, labels=ndimage.label(mask)[0], exclude_border=False)
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return watershed(-distance, markers, mask=mask).astype(np.int32)


@dataclass
class CellBlock:
    """Measurements of the cells owned by one block.

    Attributes:
        ids: ``(K,)`` cell ids (labels given: the label; segmented: numbered across the slide).
        centroid: ``(K, 2)`` ``(y, x)`` in slide pixels.
        area: ``(K,)`` pixels.
        means: ``(K, M)`` mean of each marker over the cell.
    """

    ids: np.ndarray
    centroid: np.ndarray
    area: np.ndarray
    means: np.ndarray


def measure_cells(
    labels: np.ndarray, markers: np.ndarray, origin: tuple[int, int], core: tuple[slice, slice]
) -> CellBlock:
    """Per-cell area, centroid and marker means of the cells whose centroid lies in ``core``.

    Args:
        labels: ``(h, w)`` cell labels of the block window (with halo).
        markers: ``(M, h, w)`` predicted markers on the same window.
        origin: Slide ``(row, col)`` of the window's corner.
        core: The block's own rows and columns, in window coordinates.
    """
    flat = labels.ravel()
    ids, inverse = np.unique(flat, return_inverse=True)
    area = np.bincount(inverse).astype(np.float64)
    yy, xx = np.indices(labels.shape)
    cy, cx = (np.bincount(inverse, c.ravel()) / area for c in (yy, xx))
    sums = np.stack([np.bincount(inverse, m.ravel().astype(np.float64)) for m in markers], axis=1)
    own = (ids > 0) & _inside(cy, core[0]) & _inside(cx, core[1])
    means = (sums[own] / area[own, None]).astype(np.float32)
    return CellBlock(ids[own], np.stack([cy[own] + origin[0], cx[own] + origin[1]], 1), area[own], means)


def _inside(values: np.ndarray, sl: slice) -> np.ndarray:
    return (values >= sl.start) & (values < sl.stop)


def _windows(height: int, width: int) -> Iterator[tuple[tuple[slice, slice], tuple[slice, slice]]]:
    """``(window, core)`` per block: the window with its halo (slide coords) and its core inside it."""
    for top in range(0, height, BLOCK):
        for left in range(0, width, BLOCK):
            r0, c0 = max(top - HALO, 0), max(left - HALO, 0)
            r1, c1 = min(top + BLOCK + HALO, height), min(left + BLOCK + HALO, width)
            core = (slice(top - r0, min(top + BLOCK, height) - r0), slice(left - c0, min(left + BLOCK, width) - c0))
            yield (slice(r0, r1), slice(c0, c1)), core


def block_count(height: int, width: int) -> int:
    """Number of blocks :func:`iter_cell_blocks` visits."""
    return -(-height // BLOCK) * -(-width // BLOCK)


def iter_cell_blocks(
    rgb: Any, markers: Any, labels_of: Callable[[Any, tuple[slice, slice]], np.ndarray], *,
    decode: Callable | None = None,
) -> Iterator[CellBlock]:  # fmt: skip
    """Measure the cells of a slide block by block.

    Args:
        rgb: ``(3, H, W)`` slide (lazy).
        markers: ``(M, H, W)`` predictions on the slide's grid (lazy, e.g. Zarr).
        labels_of: ``(rgb, window) -> (h, w)`` cell labels of the window (segmented, or read from a label image).
        decode: Stored marker values -> float (e.g. uint8 -> [0, 1]); default float32 as stored.

    Yields:
        One :class:`CellBlock` per block (possibly empty).
    """
    height, width = int(rgb.shape[1]), int(rgb.shape[2])
    for window, core in _windows(height, width):
        labels = labels_of(rgb, window)
        values = materialize(markers[:, window[0], window[1]])
        values = decode(values) if decode is not None else values.astype(np.float32)
        yield measure_cells(labels, values, (window[0].start, window[1].start), core)
