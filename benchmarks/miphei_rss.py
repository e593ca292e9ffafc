"""Peak memory (RSS) of ``hyperplex bio predict-mif`` on large slides: bounded by the tile band, not the slide.

Builds an N x N RGB H&E OME-TIFF by repeating a synthetic 1024 px H&E (tiled, pyramidal, written lazily),
then runs the whole pipeline (tiles -> streamed Zarr -> OME-Zarr pyramid -> nuclei and cell table) in a
fresh process per size and reads its peak RSS (``ru_maxrss``). The model is ``miphei_test`` with 16
outputs (the shipped model's marker count; the tiling, blending and writing are the same for any
model, only the speed differs). Memory grows with the slide *width* (one band of rows) and the number
of cells (the table), not the area: the printed model extrapolates to 32k x 32k.

Usage:
    OMP_NUM_THREADS=1 python benchmarks/miphei_rss.py --sizes 2048 8192 --out /tmp/miphei/rss
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

MARKERS = 16
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


def main() -> None:
    """Measure each size and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2048, 8192])
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--out", type=Path, default=Path("/tmp/miphei/rss"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = {}
    for size in args.sizes:  # one fresh child process per size
        slide = make_slide(args.out / f"he{size}.ome.tif", size)
        rows[size] = measure(slide, args.out / f"pred{size}.ome.zarr", args.tile) | {
            "band_mib": round(band_mib(size, args.tile, 32), 1)}  # fmt: skip
        print(size, rows[size], flush=True)
    print(f"32k x 32k: streaming band {band_mib(32768, args.tile, 32):.0f} MiB at tile {args.tile}, "
          f"{band_mib(32768, 128, 32):.0f} MiB at the shipped model's tile 128")  # fmt: skip
    (args.out / "rss.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
