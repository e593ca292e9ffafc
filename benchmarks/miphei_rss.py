"""Peak memory (RSS) of ``hyperplex bio predict-mif`` on large slides: bounded by the tile band, not the slide.

Builds an N x N RGB H&E OME-TIFF by repeating a synthetic 1024 px H&E (tiled, pyramidal, written lazily),
then runs the whole pipeline (tiles -> streamed Zarr -> OME-Zarr pyramid -> nuclei and cell table) in a
fresh process per size and reads its peak RSS (``ru_maxrss``). The model is ``miphei_test`` with 16
outputs (the shipped model's marker count; the tiling, blending and writing are the same for any
model, only the speed differs). Memory grows with the slide *width* (one band of rows), not the area
nor the number of cells (the cell table is spilled to disk block by block): the printed model
extrapolates to 32k x 32k.

``--table-only`` measures the cell-table stage alone (``measure_slide`` + ``write_cell_table``, the last
stage of the pipeline) at large cell counts without running a model: a lazy grid of 16 px square cells
(18 px pitch, ~the synthetic H&E's density) given as labels and lazy uint8 markers computed per window
(bimodal per cell), each size in a fresh process. The bytes per cell kept in memory are the slope of
peak RSS against cells.

Usage:
    OMP_NUM_THREADS=1 python benchmarks/miphei_rss.py --sizes 2048 8192 --out /tmp/miphei/rss
    OMP_NUM_THREADS=1 python benchmarks/miphei_rss.py --table-only --sizes 8192 16384 --out /tmp/miphei/table
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

MARKERS = 16
PITCH, SIDE = 18, 16  # --table-only cells: SIDE px squares every PITCH px
#: Bytes per cell the cell table keeps in memory: none, the rows are spilled to disk block by block
#: (``hyperplex.bio.cell_spill``); ``--table-only`` measures the slope of peak RSS against cells.
TABLE_HELD_BYTES = 0
CHILD = """
import resource, sys, torch
from hyperplex.bio.predict_mif import predict_mif
from hyperplex.common.models import create_model
from hyperplex.common.progress import quiet
torch.manual_seed(0); torch.set_num_threads(1)
model = create_model("miphei_test", markers=[f"m{i}" for i in range(%d)])
with quiet():
    r = predict_mif(sys.argv[1], sys.argv[2], model=model, tile=int(sys.argv[3]), overlap=32)
print(r.cells, r.tiles_predicted, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def make_slide(path: Path, size: int) -> Path:
    """An ``size`` x ``size`` RGB OME-TIFF: a synthetic 1024 px H&E repeated (lazy, written tile by tile)."""
    import dask.array as da

    from hyperplex.bio import write_ome_tiff
    from hyperplex.bio.synth import tissue

    he = tissue(size=1024, markers=1, seed=7).he
    reps = -(-size // 1024)
    slide = da.tile(da.from_array(he, chunks=(3, 512, 512)), (1, reps, reps))[:, :size, :size]
    return write_ome_tiff(path, slide, None, 0.5, tile=512, rgb=True)


def measure(slide: Path, out: Path, tile: int) -> dict:
    """Run the pipeline in a child process; its peak RSS (MiB), wall time and result."""
    t0 = time.time()
    done = subprocess.run([sys.executable, "-c", CHILD % MARKERS, str(slide), str(out), str(tile)],
                          capture_output=True, text=True, check=True)  # fmt: skip
    cells, tiles, peak_kib = done.stdout.split()[-3:]
    return {"peak_rss_mib": round(int(peak_kib) / 1024, 1), "seconds": round(time.time() - t0, 1),
            "cells": int(cells), "tiles": int(tiles)}  # fmt: skip


def band_mib(width: int, tile: int, overlap: int, markers: int = MARKERS) -> float:
    """Float32 blend band (sums + weights) held by the streaming writer, MiB."""
    return (markers + 1) * (tile + overlap) * width * 4 / 2**20


class GridCells:
    """Lazy ``(size, size)`` int64 labels: ``SIDE`` px square cells every ``PITCH`` px, ids row-major from 1."""

    def __init__(self, size: int) -> None:
        self.shape, self.ndim, self.dtype = (size, size), 2, np.dtype(np.int64)
        self.per_row = -(-size // PITCH)

    def __getitem__(self, key: tuple[slice, slice]) -> np.ndarray:
        y, x = (np.arange(n)[k] for n, k in zip(self.shape, key, strict=True))
        inside = (y % PITCH < SIDE)[:, None] & (x % PITCH < SIDE)[None]
        return np.where(inside, (y // PITCH)[:, None] * self.per_row + (x // PITCH)[None] + 1, 0)


class GridMarkers:
    """Lazy ``(MARKERS, size, size)`` uint8 predictions over :class:`GridCells`: per cell and marker either
    ~200 (a pseudo-random 2 in 7) or ~40, plus a +-10 pixel pattern."""

    def __init__(self, cells: GridCells) -> None:
        self.cells, self.dtype = cells, np.dtype(np.uint8)
        self.shape = (MARKERS, *cells.shape)

    def __getitem__(self, key: tuple[slice, slice, slice]) -> np.ndarray:
        ids = self.cells[key[1:]]
        y, x = np.ogrid[: ids.shape[0], : ids.shape[1]]
        out = np.empty((MARKERS, *ids.shape), np.uint8)
        for m in range(MARKERS):
            on = (ids * 2654435761 + m * 40503) % 7 < 2
            out[m] = np.where(on, 200, 40) + (y * 31 + x * 17 + m) % 21 - 10
        return out[key[0]]


def table_child(size: int, out: Path) -> None:
    """In this process: measure and write the cell table of a ``size``^2 grid slide; print cells, RSS (KiB)."""
    import resource

    import pandas  # noqa: F401  (imported before the baseline: the stage's own memory is what is measured)
    import skimage.filters
    import skimage.segmentation  # noqa: F401

    from hyperplex.bio.cell_table import measure_slide, write_cell_table

    labels = GridCells(size)
    rgb = np.broadcast_to(np.zeros((1, 1, 1), np.uint8), (3, size, size))  # given labels: only the grid
    names = [f"m{i}" for i in range(MARKERS)]
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    steps = measure_slide(rgb, GridMarkers(labels), labels, lambda v: v.astype(np.float32) / 255, (0.5, 0.5),
                          spill_dir=out)  # fmt: skip
    try:
        while True:
            next(steps)
    except StopIteration as stop:
        measured = stop.value
    count, _ = write_cell_table(measured, names, out / f"grid{size}.cells.csv", out / f"grid{size}.json", {})
    print(count, base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def measure_table(size: int, out: Path) -> dict:
    """The cell-table stage alone in a child process: peak RSS (MiB), above the imports, seconds, cells."""
    t0 = time.time()
    done = subprocess.run([sys.executable, __file__, "--table-child", str(size), "--out", str(out)],
                          capture_output=True, text=True, check=True)  # fmt: skip
    cells, base_kib, peak_kib = (int(v) for v in done.stdout.split()[-3:])
    return {"cells": cells, "peak_rss_mib": round(peak_kib / 1024, 1), "above_imports_mib": round(
        (peak_kib - base_kib) / 1024, 1), "seconds": round(time.time() - t0, 1)}  # fmt: skip


def table_main(sizes: list[int], out: Path) -> None:
    """``--table-only``: each size, then the measured bytes per cell held and the 32k extrapolation."""
    rows = {}
    for size in sizes:
        rows[size] = measure_table(size, out)
        (out / f"grid{size}.cells.csv").unlink(missing_ok=True)
        print(size, rows[size], flush=True)
    if len(rows) > 1:
        a, b = sorted(rows)[-2:]  # the two largest: the per-block working set is full size from 4096 on
        ra, rb = rows[a], rows[b]
        per_cell = (rb["peak_rss_mib"] - ra["peak_rss_mib"]) * 2**20 / (rb["cells"] - ra["cells"])
        cells32 = ra["cells"] * (32768 / a) ** 2
        peak32 = ra["peak_rss_mib"] + per_cell * (cells32 - ra["cells"]) / 2**20
        print(f"cell table: {per_cell:.1f} B/cell held (RSS slope {a} -> {b}); "
              f"32k x 32k ({cells32 / 1e6:.1f} M cells): {peak32:.0f} MiB peak")  # fmt: skip
    (out / "table_rss.json").write_text(json.dumps(rows, indent=1))


def main() -> None:
    """Measure each size and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 8192])
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--out", type=Path, default=Path("/tmp/miphei/rss"))
    parser.add_argument("--table-only", action="store_true", help="the cell-table stage alone, no model")
    parser.add_argument("--table-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.table_child:
        return table_child(args.table_child, args.out)
    if args.table_only:
        return table_main(args.sizes, args.out)
    return pipeline_main(args.sizes, args.tile, args.out)


def pipeline_main(sizes: list[int], tile: int, out: Path) -> None:
    """The whole pipeline at each size, then the 32k extrapolation from the largest."""
    from hyperplex.bio.cell_spill import cell_record

    rows = {}
    for size in sizes:  # one fresh child process per size
        slide = make_slide(out / f"he{size}.ome.tif", size)
        rows[size] = measure(slide, out / f"pred{size}.ome.zarr", tile) | {
            "band_mib": round(band_mib(size, tile, 32), 1)}  # fmt: skip
        print(size, rows[size], flush=True)
    size, row = max(rows.items())
    cells32 = row["cells"] * (32768 / size) ** 2
    peak32 = row["peak_rss_mib"] + band_mib(32768, tile, 32) - row["band_mib"] + TABLE_HELD_BYTES * (
        cells32 - row["cells"]) / 2**20  # fmt: skip
    print(f"32k x 32k: streaming band {band_mib(32768, tile, 32):.0f} MiB at tile {tile}, "
          f"{band_mib(32768, 128, 32):.0f} MiB at the shipped model's tile 128; cell table {TABLE_HELD_BYTES} B/cell "
          f"held in memory ({cells32 / 1e6:.1f} M cells spilled to disk, {cell_record(MARKERS).itemsize} B each; "
          f"--table-only measures it); peak ~{peak32:.0f} MiB ({size}^2 peak + band growth + table)")  # fmt: skip
    (out / "rss.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
