"""The per-cell table of a predicted slide: cells found (or given), their means, positive calls, thresholds.

Columns of ``<stem>.cells.csv``: ``cell_id, centroid_y, centroid_x`` (pixels), ``centroid_y_um,
centroid_x_um`` (when the pixel size is known), ``area_px``, then per marker ``<marker>`` (mean
predicted intensity, 0-1) and ``<marker>_positive`` (0/1). ``<stem>.cells.json`` holds the threshold of
each marker (Otsu over the cells' means) and how the cells were found.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hyperplex.bio.cells import CellBlock, block_count, hematoxylin_threshold, iter_cell_blocks, segment_nuclei
from hyperplex.common.arrays import materialize
from hyperplex.common.atomic import atomic_path
from hyperplex.common.errors import ChannelMismatchError

__all__ = ["CELL_EXPAND_UM", "marker_thresholds", "measure_slide", "write_cell_table"]

#: Nuclei are grown by this much (µm) to make cells.
CELL_EXPAND_UM = 2.0
_ROWS_PER_WRITE = 100_000


def _preview(rgb: Any, max_pixels: int = 1024 * 1024) -> np.ndarray:
    step = max(1, int(np.ceil(np.sqrt(rgb.shape[1] * rgb.shape[2] / max_pixels))))
    return np.asarray(materialize(rgb[:, ::step, ::step]))


def _label_source(rgb: Any, labels: Any, pixel_um: float) -> tuple[Callable, dict[str, Any]]:
    """``labels_of(rgb, window)`` and a description: read the given labels, or segment nuclei and grow them."""
    from skimage.segmentation import expand_labels

    if labels is not None:
        if isinstance(labels, (str, os.PathLike)):
            from hyperplex.bio.open import open_image

            labels = open_image(labels).levels[0][0]
        if tuple(labels.shape[-2:]) != tuple(rgb.shape[1:]):
            raise ChannelMismatchError(f"`--labels` is {tuple(labels.shape)} but the slide is {tuple(rgb.shape[1:])}.")
        plane = labels if labels.ndim == 2 else labels[0]
        return (lambda _rgb, w: np.asarray(materialize(plane[w[0], w[1]])).astype(np.int64)), {"cells": "given labels"}
    threshold = hematoxylin_threshold(_preview(rgb))
    grow = max(round(CELL_EXPAND_UM / pixel_um), 0)

    def segment(data: Any, w: tuple[slice, slice]) -> np.ndarray:
        tile = np.asarray(materialize(data[:, w[0], w[1]]))
        return expand_labels(segment_nuclei(tile, threshold, pixel_um), grow)

    how = {"cells": "nuclei (rgb2hed hematoxylin > Otsu threshold, watershed) grown by "
           f"{CELL_EXPAND_UM} um", "hematoxylin_threshold": threshold}  # fmt: skip
    return segment, how


def measure_slide(
    rgb: Any, markers: Any, labels: Any, decode: Callable, pixel_size: Any
) -> Generator[tuple[int, int], None, tuple[list[CellBlock], dict[str, Any], Any]]:
    """Measure every cell block by block; yields ``(done, total)`` blocks.

    Returns:
        ``(blocks, how, pixel_size)`` for :func:`write_cell_table`; segmented cells are renumbered 1..N.
    """
    pixel_um = float(pixel_size[0]) if pixel_size else 0.5
    labels_of, how = _label_source(rgb, labels, pixel_um)
    total, blocks, next_id = block_count(int(rgb.shape[1]), int(rgb.shape[2])), [], 1
    for done, block in enumerate(iter_cell_blocks(rgb, markers, labels_of, decode=decode), start=1):
        if labels is None:
            block.ids = np.arange(next_id, next_id + len(block.ids))
            next_id += len(block.ids)
        blocks.append(block)
        yield done, total
    return blocks, how, pixel_size


def marker_thresholds(means: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Per marker, the Otsu threshold of the cells' mean intensities (1.0, i.e. none positive, when flat)."""
    from skimage.filters import threshold_otsu

    out = {}
    for j, name in enumerate(names):
        values = means[:, j]
        out[name] = float(threshold_otsu(values)) if values.size > 1 and np.ptp(values) > 0 else 1.0
    return out


def write_cell_table(
    measured: tuple[list[CellBlock], dict[str, Any], Any], names: Sequence[str], csv_path: Path, json_path: Path,
    extra: dict[str, Any],
) -> tuple[int, dict[str, float]]:  # fmt: skip
    """Write the CSV (in row chunks) and the JSON of thresholds, both atomically.

    Returns:
        ``(cell count, thresholds)``.
    """
    import pandas as pd

    blocks, how, pixel_size = measured
    means = np.concatenate([b.means for b in blocks]).astype(np.float32) if blocks else np.zeros((0, len(names)))
    thresholds = marker_thresholds(means, names)
    cut = np.array([thresholds[n] for n in names], np.float32)
    ids, centroid, area = (np.concatenate([getattr(b, k) for b in blocks]) for k in ("ids", "centroid", "area"))
    with atomic_path(csv_path) as tmp:
        for start in range(0, max(len(ids), 1), _ROWS_PER_WRITE):
            part = slice(start, start + _ROWS_PER_WRITE)
            frame = {"cell_id": ids[part], "centroid_y": centroid[part, 0], "centroid_x": centroid[part, 1]}
            if pixel_size:
                frame["centroid_y_um"] = centroid[part, 0] * pixel_size[0]
                frame["centroid_x_um"] = centroid[part, 1] * pixel_size[1]
            frame["area_px"] = area[part].astype(np.int64)
            frame |= {n: means[part, j] for j, n in enumerate(names)}
            frame |= {f"{n}_positive": (means[part, j] > cut[j]).astype(np.uint8) for j, n in enumerate(names)}
            pd.DataFrame(frame).to_csv(tmp, mode="a", header=start == 0, index=False, float_format="%.4f")
    info = {"thresholds": thresholds, "threshold_method": "otsu over the cells' mean predicted intensity (0-1)",
            "positive": "<marker>_positive = mean > threshold", "cell_count": len(ids)}  # fmt: skip
    info |= how | extra
    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps(info, indent=1))
    return len(ids), thresholds
