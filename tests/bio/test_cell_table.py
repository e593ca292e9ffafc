"""The per-cell table of predict-mif: spilled to disk block by block, the same CSV as in memory, bounded memory.

The reference here is the straightforward in-memory computation over the whole slide at once (per-cell
sums by ``np.bincount``, ``threshold_otsu`` over every cell's mean, one ``DataFrame.to_csv``); the
streamed path must write the same bytes.
"""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pandas as pd
import pytest

from hyperplex.bio import cell_spill, cell_table, cells
from hyperplex.bio.cell_spill import CellSpill
from hyperplex.bio.cell_table import marker_thresholds, measure_slide, write_cell_table

NAMES = ("CD3e", "Pan-CK", "Ki67")


def _run(steps, on_step=lambda *_: None):
    """Drive a ``(done, total)`` step generator; its return value."""
    while True:
        try:
            on_step(*next(steps))
        except StopIteration as stop:
            return stop.value


def _decode(stored: np.ndarray) -> np.ndarray:
    return stored.astype(np.float32) / 255.0


def _slide(height: int, width: int, pitch: int, seed: int, max_side: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """Rectangular cells (random sizes, some ids skipped) on a grid, and uint8 markers bimodal per cell."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((height, width), np.int64)
    next_id = 1
    for top in range(0, height - pitch + 1, pitch):
        for left in range(0, width - pitch + 1, pitch):
            h, w = rng.integers(2, max_side + 1, size=2)
            labels[top : top + h, left : left + w] = next_id
            next_id += int(rng.integers(1, 3))  # gaps in the ids, as a label image may have
    on = rng.random((len(NAMES), next_id)) < 0.3
    level = np.where(on, rng.uniform(0.55, 0.9, on.shape), rng.uniform(0.05, 0.35, on.shape))
    noise = rng.normal(0, 0.05, (len(NAMES), height, width))
    markers = np.clip((level[:, labels] + noise) * 255, 0, 255).round().astype(np.uint8)
    return labels, markers


def _reference_csv(labels: np.ndarray, markers: np.ndarray, pixel: tuple[float, float], block: int) -> tuple:
    """The table computed over the whole slide at once, rows in block order (then id), and its thresholds."""
    from skimage.filters import threshold_otsu

    ids, inverse = np.unique(labels.ravel(), return_inverse=True)
    area = np.bincount(inverse).astype(np.float64)
    yy, xx = np.indices(labels.shape)
    cy, cx = (np.bincount(inverse, c.ravel()) / area for c in (yy, xx))
    values = _decode(markers)
    sums = np.stack([np.bincount(inverse, m.ravel().astype(np.float64)) for m in values], axis=1)
    means = (sums / area[:, None]).astype(np.float32)
    keep = ids > 0
    order = np.lexsort((ids[keep], cx[keep] // block, cy[keep] // block))
    ids, cy, cx, area, means = (a[keep][order] for a in (ids, cy, cx, area, means))
    thresholds = {n: float(threshold_otsu(means[:, j])) for j, n in enumerate(NAMES)}
    frame = {"cell_id": ids, "centroid_y": cy, "centroid_x": cx, "centroid_y_um": cy * pixel[0],
             "centroid_x_um": cx * pixel[1], "area_px": area.astype(np.int64)}  # fmt: skip
    frame |= {n: means[:, j] for j, n in enumerate(NAMES)}
    frame |= {f"{n}_positive": (means[:, j] > thresholds[n]).astype(np.uint8) for j, n in enumerate(NAMES)}
    return pd.DataFrame(frame).to_csv(index=False, float_format="%.4f"), thresholds


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 64 px (halo 8) and read/write chunks of 50 rows: many blocks and chunks on a small slide."""
    monkeypatch.setattr(cells, "BLOCK", 64)
    monkeypatch.setattr(cells, "HALO", 8)
    monkeypatch.setattr(cell_spill, "READ_ROWS", 50)
    monkeypatch.setattr(cell_table, "_ROWS_PER_WRITE", 50)


def _measure_and_write(labels, markers, tmp_path, pixel=(0.5, 0.5)):
    rgb = np.zeros((3, *labels.shape), np.uint8)  # given labels: the RGB is only the grid
    measured = _run(measure_slide(rgb, markers, labels, _decode, pixel, spill_dir=tmp_path))
    folder = measured[0].path.parent
    count, thresholds = write_cell_table(measured, NAMES, tmp_path / "t.cells.csv", tmp_path / "t.cells.json", {})
    return count, thresholds, folder


def test_spilled_table_is_byte_identical_to_the_in_memory_reference(small_blocks, tmp_path):
    labels, markers = _slide(200, 150, 7, seed=1)
    count, thresholds, folder = _measure_and_write(labels, markers, tmp_path)
    expected_csv, expected_thresholds = _reference_csv(labels, markers, (0.5, 0.5), 64)
    assert count == len(np.unique(labels)) - 1 > 500  # many blocks, many 50-row chunks
    assert (tmp_path / "t.cells.csv").read_text() == expected_csv
    assert thresholds == expected_thresholds  # exactly threshold_otsu over all cells, not an approximation
    info = json.loads((tmp_path / "t.cells.json").read_text())
    assert info["thresholds"] == expected_thresholds and info["cell_count"] == count
    assert not folder.exists() and {p.name for p in tmp_path.iterdir()} == {"t.cells.csv", "t.cells.json"}


def test_chunked_otsu_equals_threshold_otsu_over_all_values(small_blocks, tmp_path):
    from skimage.filters import threshold_otsu

    rng = np.random.default_rng(3)
    means = np.concatenate([rng.normal(0.2, 0.05, (3000, 3)), rng.normal(0.7, 0.1, (1234, 3))]).astype(np.float32)
    spill = CellSpill(3, tmp_path)
    for part in np.array_split(np.arange(len(means)), 37):  # uneven blocks, read back in 50-row chunks
        spill.append(cells.CellBlock(part, np.zeros((len(part), 2)), np.ones(len(part)), means[part]))
    measured = (spill, {}, None)
    _, thresholds = write_cell_table(measured, NAMES, tmp_path / "a.csv", tmp_path / "a.json", {})
    assert thresholds == {n: float(threshold_otsu(means[:, j])) for j, n in enumerate(NAMES)}
    assert marker_thresholds(means, NAMES) == thresholds
    assert marker_thresholds(np.full((5, 3), 0.4, np.float32), NAMES) == dict.fromkeys(NAMES, 1.0)  # flat


def test_spill_round_trips_blocks_and_an_empty_slide_writes_the_header(tmp_path):
    block = cells.CellBlock(np.array([7, 3]), np.array([[1.5, 2.0], [3.0, 4.25]]), np.array([4.0, 9.0]),
                            np.array([[0.1, 0.2], [0.3, 0.4]], np.float32))  # fmt: skip
    with CellSpill(2, tmp_path) as spill:
        spill.append(cells.CellBlock(np.zeros(0, int), np.zeros((0, 2)), np.zeros(0), np.zeros((0, 2), np.float32)))
        spill.append(block)
        (back,) = list(spill)
        for key in ("ids", "centroid", "area", "means"):
            np.testing.assert_array_equal(getattr(back, key), getattr(block, key))
        np.testing.assert_array_equal(spill.low, block.means[0])
        np.testing.assert_array_equal(spill.high, block.means[1])
    assert not spill.path.parent.exists()
    count, thresholds = write_cell_table((CellSpill(2, tmp_path), {}, None), ["a", "b"], tmp_path / "e.csv",
                                         tmp_path / "e.json", {})  # fmt: skip
    assert count == 0 and thresholds == {"a": 1.0, "b": 1.0}
    assert (tmp_path / "e.csv").read_text() == "cell_id,centroid_y,centroid_x,area_px,a,b,a_positive,b_positive\n"


def test_a_cancelled_measurement_leaves_no_spill(small_blocks, tmp_path):
    labels, markers = _slide(128, 128, 7, seed=2)
    steps = measure_slide(np.zeros((3, 128, 128), np.uint8), markers, labels, _decode, None, spill_dir=tmp_path)
    next(steps)
    assert len(list(tmp_path.iterdir())) == 1  # the spill folder
    steps.close()  # what a cancelled worker does
    assert list(tmp_path.iterdir()) == []


def _traced(labels, markers, tmp_path) -> tuple[list[int], int]:
    """Python memory held after each block (tracemalloc current) and the peak while writing the table."""
    rgb = np.zeros((3, *labels.shape), np.uint8)
    tracemalloc.start()
    try:
        held = []
        steps = measure_slide(rgb, markers, labels, _decode, (0.5, 0.5), spill_dir=tmp_path)
        measured = _run(steps, lambda *_: held.append(tracemalloc.get_traced_memory()[0]))
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        write_cell_table(measured, NAMES, tmp_path / "m.cells.csv", tmp_path / "m.cells.json", {})
        return held, tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_cell_count(small_blocks, tmp_path, monkeypatch):
    """16 blocks of 2x2 cells (~450 cells each: ~20 kB of rows a block) vs 64: what is kept stays flat."""
    monkeypatch.setattr(cell_spill, "READ_ROWS", 1000)
    monkeypatch.setattr(cell_table, "_ROWS_PER_WRITE", 1000)
    small, big = (_slide(side, side, 3, seed=4, max_side=2) for side in (256, 512))
    held_small, write_small = _traced(*small, tmp_path)
    held_big, write_big = _traced(*big, tmp_path)
    assert len(held_big) == 64 and len(np.unique(big[0])) - 1 > 28_000
    # kept between blocks: in memory the rows would add ~1.3 MB over the 64 blocks; spilled, nothing grows
    assert max(held_big[1:]) - held_big[1] < 64_000
    assert max(held_big) < max(held_small) + 64_000
    # the CSV pass holds one chunk of rows, not the table (in memory: 4x the cells, ~1 MB more)
    assert write_big < write_small * 1.25 + 100_000
