"""The per-cell table of a predicted slide: cells found (or given), their means, positive calls, thresholds.

Columns of ``<stem>.cells.csv``: ``cell_id, centroid_y, centroid_x`` (pixels), ``centroid_y_um,
centroid_x_um`` (when the pixel size is known), ``area_px``, then per marker ``<marker>`` (mean
predicted intensity, 0-1) and ``<marker>_positive`` (0/1). ``<stem>.cells.json`` holds the threshold of
each marker (Otsu over the cells' means) and how the cells were found.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Generator, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hyperplex.bio.cell_spill import CellSpill
from hyperplex.bio.cells import block_count, hematoxylin_threshold, iter_cell_blocks, segment_nuclei
from hyperplex.common.arrays import materialize
from hyperplex.common.atomic import atomic_path
from hyperplex.common.errors import ChannelMismatchError

__all__ = ["CELL_EXPAND_UM", "marker_thresholds", "measure_slide", "write_cell_table"]

#: Nuclei are grown by this much (µm) to make cells.
CELL_EXPAND_UM = 2.0
_ROWS_PER_WRITE = 100_000
_OTSU_BINS = 256  # threshold_otsu's default: the thresholds are those over all values at once


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
    rgb: Any, markers: Any, labels: Any, decode: Callable, pixel_size: Any, *,
    spill_dir: str | os.PathLike[str] | None = None,
) -> Generator[tuple[int, int], None, tuple[CellSpill, dict[str, Any], Any]]:  # fmt: skip
    """Measure every cell block by block, spilling each block's rows to disk; yields ``(done, total)`` blocks.

    Memory does not grow with the number of cells: see :class:`~hyperplex.bio.cell_spill.CellSpill`.

    Args:
        rgb: ``(3, H, W)`` slide (lazy).
        markers: ``(M, H, W)`` predicted markers (lazy).
        labels: Cell labels (array or path) or None to segment nuclei and grow them.
        decode: Stored marker values -> float.
        pixel_size: ``(y, x)`` µm or None.
        spill_dir: Folder for the temporary spill (None: the system's temporary directory).

    Returns:
        ``(cells, how, pixel_size)`` for :func:`write_cell_table`, which removes the spill; ``cells``
        iterates as :class:`CellBlock` chunks. Segmented cells are renumbered 1..N.
    """
    pixel_um = float(pixel_size[0]) if pixel_size else 0.5
    labels_of, how = _label_source(rgb, labels, pixel_um)
    total, next_id = block_count(int(rgb.shape[1]), int(rgb.shape[2])), 1
    cells = CellSpill(int(markers.shape[0]), spill_dir)
    try:
        for done, block in enumerate(iter_cell_blocks(rgb, markers, labels_of, decode=decode), start=1):
            if labels is None:
                block.ids = np.arange(next_id, next_id + len(block.ids))
                next_id += len(block.ids)
            cells.append(block)
            yield done, total
    except BaseException:  # an error, or the generator closed (cancelled): no spill left behind
        cells.close()
        raise
    return cells, how, pixel_size


def _otsu_columns(chunks: Iterable[np.ndarray], low: np.ndarray, high: np.ndarray, count: int) -> list[float]:
    """Per column, :func:`skimage.filters.threshold_otsu` over all rows of ``chunks`` (1.0 when flat).

    ``threshold_otsu(values)`` is Otsu over a 256-bin histogram spanning ``[min, max]`` of the values; the
    same histogram is summed here chunk by chunk (each value falls in the same bin whatever the chunk),
    so the thresholds equal those over the whole column at once, while memory stays one chunk.
    """
    from skimage.filters import threshold_otsu

    live = [j for j in range(len(low)) if count > 1 and high[j] > low[j]]  # as np.ptp(values) > 0
    counts: dict[int, np.ndarray] = {j: 0 for j in live}
    edges: dict[int, np.ndarray] = {}
    for chunk in chunks:
        for j in live:
            hist, edges[j] = np.histogram(chunk[:, j], bins=_OTSU_BINS, range=(low[j], high[j]))
            counts[j] = counts[j] + hist
    out = [1.0] * len(low)
    for j in live:
        out[j] = float(threshold_otsu(hist=(counts[j], (edges[j][:-1] + edges[j][1:]) / 2.0)))
    return out


def marker_thresholds(means: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Per marker, the Otsu threshold of the cells' mean intensities (1.0, i.e. none positive, when flat)."""
    means = np.asarray(means)
    low, high = (means.min(axis=0), means.max(axis=0)) if len(means) else (np.zeros(len(names)),) * 2
    return dict(zip(names, _otsu_columns([means], low, high, len(means)), strict=True))


def _frame(part: np.ndarray, names: Sequence[str], cut: np.ndarray, pixel_size: Any) -> Any:
    """One chunk of spilled records as the CSV's columns."""
    import pandas as pd

    centroid, means = part["centroid"], part["means"]
    frame = {"cell_id": part["id"], "centroid_y": centroid[:, 0], "centroid_x": centroid[:, 1]}
    if pixel_size:
        frame["centroid_y_um"] = centroid[:, 0] * pixel_size[0]
        frame["centroid_x_um"] = centroid[:, 1] * pixel_size[1]
    frame["area_px"] = part["area"]
    frame |= {n: means[:, j] for j, n in enumerate(names)}
    frame |= {f"{n}_positive": (means[:, j] > cut[j]).astype(np.uint8) for j, n in enumerate(names)}
    return pd.DataFrame(frame)


def write_cell_table(
    measured: tuple[CellSpill, dict[str, Any], Any], names: Sequence[str], csv_path: Path, json_path: Path,
    extra: dict[str, Any],
) -> tuple[int, dict[str, float]]:  # fmt: skip
    """Write the CSV (read back from the spill in row chunks) and the JSON of thresholds, both atomically.

    Two passes over the spill: the per-marker Otsu histograms, then the rows. The spill is removed.

    Returns:
        ``(cell count, thresholds)``.
    """
    cells, how, pixel_size = measured
    try:
        means = (part["means"] for part in cells.chunks())
        thresholds = dict(zip(names, _otsu_columns(means, cells.low, cells.high, len(cells)), strict=True))
        cut = np.array([thresholds[n] for n in names], np.float32)
        with atomic_path(csv_path) as tmp:
            for i, part in enumerate(cells.chunks(_ROWS_PER_WRITE)):
                frame = _frame(part, names, cut, pixel_size)
                frame.to_csv(tmp, mode="a", header=i == 0, index=False, float_format="%.4f")
    finally:
        cells.close()
    info = {"thresholds": thresholds, "threshold_method": "otsu over the cells' mean predicted intensity (0-1)",
            "positive": "<marker>_positive = mean > threshold", "cell_count": len(cells)}  # fmt: skip
    info |= how | extra
    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps(info, indent=1))
    return len(cells), thresholds
