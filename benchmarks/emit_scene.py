"""End-to-end methane detection on a full-size synthetic EMIT scene, per method, against the read floor.

The floor is the time to only read the bands the pipeline needs from the granule (same chunked
reader). Each run happens in a fresh subprocess so its peak RSS (VmHWM, which unlike ``ru_maxrss`` is
not inherited across exec from the generating parent) is its own. ``--chunked`` stores the radiance in
gzip chunks of 64 x 64 x 285, as netCDF tools commonly write EMIT granules. Target on 2 cores:
Mag1c end to end <= 3x the read floor, peak RSS <= 3 GB.

    python benchmarks/emit_scene.py [--lines 1280 --samples 1242] [--methods mag1c mf ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

WORK = Path(__file__).resolve().parents[1] / ".benchmarks_out" / "emit_scene"

_FLOOR = """
import json, sys, time, numpy as np
from hyperplex.geo.detect.config import DetectConfig
from hyperplex.geo.detect.scene import _aux_bands, _filter_bands
from hyperplex.geo.detect.source import open_source
src = open_source(sys.argv[1]); cfg = DetectConfig()
t = time.perf_counter()
needed = np.unique(np.concatenate([_filter_bands(src, cfg), *_aux_bands(src, cfg).values()]).astype(int))
n = 0
for rows, block in src.iter_bands(needed, cfg.chunk_lines):
    n += block.size
rss = float(next(x.split()[1] for x in open("/proc/self/status") if x.startswith("VmHWM"))) / 2**20  # kB -> GB
print(json.dumps({"seconds": time.perf_counter() - t, "bands": int(needed.size), "values": n, "rss_gb": rss}))
"""

_RUN = """
import json, sys, time
from hyperplex.common.progress import quiet
from hyperplex.geo.detect import DetectConfig, detect_scene
t = time.perf_counter()
with quiet():
    s = detect_scene(sys.argv[1], sys.argv[2], DetectConfig(method=sys.argv[3], overwrite=True))
rss = float(next(x.split()[1] for x in open("/proc/self/status") if x.startswith("VmHWM"))) / 2**20  # kB -> GB
print(json.dumps({"seconds": time.perf_counter() - t, "plumes": s["plume_count"], "timings": s["timings_s"],
                  "rss_gb": rss}))
"""


def _child(code: str, *args: str) -> tuple[dict, float]:
    """Run ``code`` in a fresh interpreter; return its JSON output and its own peak RSS in GB."""
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result, result["rss_gb"]


def make_scene(lines: int, samples: int, chunked: bool = False) -> Path:
    """Write (once) a full-size scene with plumes and every hazard (radiance contiguous or in gzip chunks)."""
    from hyperplex.geo.synth import emit_scene, write_emit_scene

    stem = f"EMIT_L1B_RAD_001_BENCH_{lines}x{samples}" + ("_chunked" if chunked else "")
    path = WORK / f"{stem}.nc"
    if not path.exists():
        t = time.perf_counter()
        scene = emit_scene(lines=lines, samples=samples, plumes=8, seed=1, water=2, lookalikes=4, saturated=3,
                           flares=2, fill_columns=2, glt_rotation=20.0, plume_size=(3.0, 8.0))  # fmt: skip
        storage = {"chunks": (64, 64, 285), "compression": 4} if chunked else {}
        write_emit_scene(scene, WORK, stem, **storage)
        print(f"generated {path.name} in {time.perf_counter() - t:.0f} s ({path.stat().st_size / 2**30:.2f} GiB)")
    return path


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1280)
    parser.add_argument("--samples", type=int, default=1242)
    parser.add_argument("--chunked", action="store_true", help="radiance in 64 x 64 x 285 gzip chunks")
    parser.add_argument("--methods", nargs="+", default=["mag1c", "mag1c-sas", "mf", "cem", "ace"])
    args = parser.parse_args()
    path = make_scene(args.lines, args.samples, args.chunked)
    floor, floor_rss = _child(_FLOOR, str(path))
    print(f"scene {args.lines} x {args.samples} x 285 ({path.stat().st_size / 2**30:.2f} GiB on disk)")
    print(f"read floor: {floor['seconds']:.2f} s for {floor['bands']} bands, peak RSS {floor_rss:.2f} GB")
    print(f"{'method':10s} {'seconds':>8s} {'x floor':>8s} {'peak GB':>8s} {'plumes':>7s}  stages")
    for method in args.methods:
        res, rss = _child(_RUN, str(path), str(WORK / "out"), method)
        ratio = res["seconds"] / floor["seconds"]
        stages = " ".join(f"{k}={v:.1f}" for k, v in res["timings"].items() if k != "total")
        print(f"{method:10s} {res['seconds']:8.2f} {ratio:8.2f} {rss:8.2f} {res['plumes']:7d}  {stages}")
    print("target: mag1c <= 3.0 x floor, peak RSS <= 3 GB")


if __name__ == "__main__":
    main()
