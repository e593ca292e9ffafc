"""Reading an EMIT granule's methane bands: hyperplex's reader against a plain-h5py floor, two layouts.

The same synthetic scene is stored contiguous and in gzip+shuffle chunks of 64 x 64 x 285 (as netCDF
tools commonly write EMIT radiance). Each measurement runs in a fresh interpreter, so its peak RSS
(VmHWM; ``ru_maxrss`` would keep the generator's across exec) is its own. Measurements:

- ``floor``: plain h5py, the 2122-2488 nm window in 64-line row blocks, one hyperslab each;
- ``reader-1t`` / ``reader``: :class:`hyperplex.geo.io.emit.EmitReader` on the same bands, one thread
  and the default thread count;
- ``pipeline``: ``SceneSource.iter_bands`` on the bands detection needs (window, RGB, saturation,
  flare), 128-line blocks, with prefetch: what ``hyperplex methane detect`` reads;
- ``per-span``: the previous reader, one file open and one hyperslab per band span and block.

Target: chunked ``reader`` <= 1.2 x floor; contiguous ``pipeline`` not slower than ``per-span``.

    python benchmarks/emit_read.py [--quick] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

WORK = Path(__file__).resolve().parents[1] / ".benchmarks_out" / "emit_read"
CHUNKS = (64, 64, 285)

_CHILD = """
import json, sys, time
import h5py, numpy as np
from hyperplex.geo.detect.config import DetectConfig
from hyperplex.geo.detect.filter_bands import filter_bands
from hyperplex.geo.detect.scene import _aux_bands
from hyperplex.geo.detect.source import open_source
from hyperplex.geo.io.emit import EmitReader, band_spans
mode, path = sys.argv[1], sys.argv[2]
src = open_source(path); cfg = DetectConfig()
window = src.channels.window(2122, 2488)
filt = filter_bands(src.channels, cfg, src.path)
needed = np.unique(np.concatenate([filt, *_aux_bands(src, cfg).values()]).astype(int))
h = src.shape[0]
t, n = time.perf_counter(), 0
if mode == "floor":
    with h5py.File(path, "r") as f:
        for r in range(0, h, 64):
            n += f["radiance"][r:r + 64, :, window[0]:window[-1] + 1].size
elif mode.startswith("reader"):
    with EmitReader(path, threads=1 if mode == "reader-1t" else None) as reader:
        for rows in reader.row_blocks(64):
            n += reader.read(rows, window).size
elif mode == "pipeline":
    for rows, block in src.iter_bands(needed, cfg.chunk_lines):
        n += block.size
else:  # per-span: the reader before chunk-aware reading
    for r in range(0, h, cfg.chunk_lines):
        for lo, hi, idx in band_spans(needed):
            with h5py.File(path, "r") as f:
                block = np.moveaxis(f["radiance"][r:r + cfg.chunk_lines, :, lo:hi], -1, 0).astype(np.float32)
            block[block == -9999] = np.nan
            n += block[idx - lo].size
rss = float(next(x.split()[1] for x in open("/proc/self/status") if x.startswith("VmHWM"))) / 2**20  # kB -> GB
print(json.dumps({"seconds": time.perf_counter() - t, "values": n, "rss_gb": rss}))
"""

MODES = ("floor", "reader-1t", "reader", "pipeline", "per-span")


def make_layouts(lines: int, samples: int) -> dict[str, Path]:
    """Write (once) the scene contiguous and in compressed chunks; returns paths by layout."""
    from hyperplex.geo.synth import emit_scene, write_emit_scene

    stem = f"EMIT_L1B_RAD_001_READ_{lines}x{samples}"
    paths = {"contiguous": WORK / f"{stem}.nc", "chunked": WORK / f"{stem}_chunked.nc"}
    if not all(p.exists() for p in paths.values()):
        t = time.perf_counter()
        scene = emit_scene(lines=lines, samples=samples, plumes=4, seed=1, saturated=2, flares=1, fill_columns=2)
        write_emit_scene(scene, WORK, stem)
        write_emit_scene(scene, WORK, f"{stem}_chunked", chunks=CHUNKS, compression=4)
        print(f"generated both layouts in {time.perf_counter() - t:.0f} s")
    return paths


def _child(mode: str, path: Path) -> dict:
    """One measurement in a fresh interpreter: seconds, values read, peak RSS (GB)."""
    out = subprocess.run([sys.executable, "-c", _CHILD, mode, str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(paths: dict[str, Path], repeat: int) -> dict[str, dict[str, list[dict]]]:
    """Every mode on every layout, interleaved ``repeat`` times (so machine noise hits all alike)."""
    runs: dict[str, dict[str, list[dict]]] = {layout: {m: [] for m in MODES} for layout in paths}
    for _ in range(repeat):
        for layout, path in paths.items():
            for mode in MODES:
                runs[layout][mode].append(_child(mode, path))
    return runs


def main() -> None:
    """Generate, measure and print the table of medians and ratios against the floor."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="half-size scene (640 x 621)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    lines, samples = (640, 621) if args.quick else (1280, 1242)
    paths = make_layouts(lines, samples)
    runs = measure(paths, args.repeat)
    print(f"scene {lines} x {samples} x 285, chunks {CHUNKS} gzip+shuffle, median of {args.repeat}")
    print(f"{'layout':11s} {'mode':10s} {'seconds':>8s} {'x floor':>8s} {'peak GB':>8s}  all seconds")
    for layout, modes in runs.items():
        floor = statistics.median(r["seconds"] for r in modes["floor"])
        for mode, rs in modes.items():
            sec = statistics.median(r["seconds"] for r in rs)
            every = " ".join(f"{r['seconds']:.2f}" for r in rs)
            print(f"{layout:11s} {mode:10s} {sec:8.2f} {sec / floor:8.2f} {max(r['rss_gb'] for r in rs):8.2f}  {every}")


if __name__ == "__main__":
    main()
