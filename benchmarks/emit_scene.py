"""``hyperplex methane detect`` on a full-size synthetic EMIT granule, both layouts, against the read floor.

The same scene is stored contiguous and in gzip chunks of 64 x 64 x 285 (as netCDF tools commonly write
EMIT radiance). Per layout, interleaved ``--repeat`` times so that machine noise hits all alike:

- ``floor``: plain h5py reading the 2122-2488 nm window in 64-line row blocks (the plain read floor);
- ``cli``: ``hyperplex methane detect <granule> --out ... --overwrite -q`` in a fresh interpreter (the
  ``methane`` command group called directly, as the ``hyperplex`` entry point dispatches to it), wall
  time from the parent (interpreter start, imports, kernel loading, read, filter, products), its peak
  RSS (VmHWM, read at exit inside the CLI process: ``ru_maxrss`` would report the parent's size at fork)
  and its stage timings (``run.json``).

Targets on 2 cores: the CLI within 2 x floor + 3 s of start-up on both layouts, peak RSS <= 2 GB.
The scene is generated once in a child process (about 90 s, 3 GB). ``--methods`` adds other methods. The
package's bytecode is written first (:func:`compile_bytecode`), as a wheel install has it.

    python benchmarks/emit_scene.py [--lines 1280 --samples 1242] [--repeat 2] [--methods mag1c mf ...]
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

WORK = Path(__file__).resolve().parents[1] / ".benchmarks_out" / "emit_scene"
CHUNKS = (64, 64, 285)
START_UP_S = 3.0
RSS_TARGET_GB = 2.0

_VMHWM = 'float(next(x.split()[1] for x in open("/proc/self/status") if x.startswith("VmHWM"))) / 2**20'

_FLOOR = f"""
import json, sys, time
import h5py, numpy as np
path = sys.argv[1]
t = time.perf_counter()
with h5py.File(path, "r") as f:
    wl = f["sensor_band_parameters/wavelengths"][:]
    lo, hi = np.flatnonzero((wl >= 2122) & (wl <= 2488))[[0, -1]]
    rad = f["radiance"]
    for r in range(0, rad.shape[0], 64):
        block = rad[r:r + 64, :, lo:hi + 1]
print(json.dumps({{"seconds": time.perf_counter() - t, "rss_gb": {_VMHWM}}}))
"""

_CLI = f"""
import atexit, json, sys
def _report():
    sys.stderr.write("\\nBENCH " + json.dumps({{"rss_gb": {_VMHWM}}}) + "\\n")
atexit.register(_report)
from hyperplex.geo.cli import methane
methane.main(["detect", *sys.argv[1:]], prog_name="hyperplex methane")
"""

_GENERATE = """
import sys
sys.path.insert(0, sys.argv[1])
from emit_scene import make_scenes
make_scenes(int(sys.argv[2]), int(sys.argv[3]))
"""


def make_scenes(lines: int, samples: int) -> dict[str, Path]:
    """Write (once) a full-size scene with plumes and every hazard, contiguous and in gzip chunks.

    Returns:
        The two granules' paths, keyed ``contiguous`` and ``chunked``.
    """
    stem = f"EMIT_L1B_RAD_001_BENCH_{lines}x{samples}"
    paths = {"contiguous": WORK / f"{stem}.nc", "chunked": WORK / f"{stem}_chunked.nc"}
    if not all(p.exists() for p in paths.values()):
        from hyperplex.geo.synth import emit_scene, write_emit_scene

        t = time.perf_counter()
        scene = emit_scene(lines=lines, samples=samples, plumes=8, seed=1, water=2, lookalikes=4, saturated=3,
                           flares=2, fill_columns=2, glt_rotation=20.0, plume_size=(3.0, 8.0))  # fmt: skip
        write_emit_scene(scene, WORK, stem)
        write_emit_scene(scene, WORK, f"{stem}_chunked", chunks=CHUNKS, compression=4)
        print(f"generated both layouts in {time.perf_counter() - t:.0f} s")
    return paths


def _floor(path: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", _FLOOR, str(path)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cli(path: Path, method: str) -> dict:
    """One CLI run in a fresh interpreter: wall seconds, peak RSS (GB) and the stage timings of run.json."""
    out_dir = WORK / "out" / method
    args = [str(path), "--out", str(out_dir), "--method", method, "--overwrite", "-q"]
    t = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", _CLI, *args], capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if run.returncode:
        raise RuntimeError(f"hyperplex methane detect failed on {path.name}:\n{run.stderr[-3000:]}")
    report = json.loads(run.stderr.rsplit("BENCH ", 1)[1].splitlines()[0])
    stages = json.loads((out_dir / f"{path.stem}_run.json").read_text())["timings_s"]
    return {"seconds": seconds, "rss_gb": report["rss_gb"], "stages": stages}


def measure(paths: dict[str, Path], methods: list[str], repeat: int) -> dict[str, dict[str, list[dict]]]:
    """The floor and every method's CLI run on every layout, interleaved ``repeat`` times."""
    runs: dict[str, dict[str, list[dict]]] = {layout: {m: [] for m in ("floor", *methods)} for layout in paths}
    for _ in range(repeat):
        for layout, path in paths.items():
            runs[layout]["floor"].append(_floor(path))
            for method in methods:
                runs[layout][method].append(_cli(path, method))
    return runs


def report(runs: dict[str, dict[str, list[dict]]], repeat: int) -> None:
    """Print medians, the ratios the targets are stated in, peak RSS and the median stage timings.

    ``outside`` is the CLI's wall time outside the pipeline's stages: interpreter start, imports, opening
    the granule, kernel loading not hidden by the read, and exit.
    """
    print(f"median of {repeat}; target: CLI <= 2 x floor + {START_UP_S:.0f} s, peak RSS <= {RSS_TARGET_GB:.0f} GB")
    print(f"{'layout':11s} {'run':10s} {'seconds':>8s} {'x floor':>8s} {'(s-3)/fl':>8s} {'budget':>7s} "
          f"{'peak GB':>8s}  stages (median s)")  # fmt: skip
    for layout, modes in runs.items():
        floor = statistics.median(r["seconds"] for r in modes["floor"])
        for mode, rs in modes.items():
            sec = statistics.median(r["seconds"] for r in rs)
            rss = max(r["rss_gb"] for r in rs)
            line = f"{layout:11s} {mode:10s} {sec:8.2f} {sec / floor:8.2f}"
            if mode == "floor":
                print(f"{line} {'':8s} {'':7s} {rss:8.2f}")
                continue
            budget = 2 * floor + START_UP_S
            ok = "ok" if sec <= budget and rss <= RSS_TARGET_GB else "MISS"
            stages = {k: statistics.median(r["stages"][k] for r in rs) for k in rs[0]["stages"] if k != "total"}
            stages["outside"] = statistics.median(r["seconds"] - r["stages"]["total"] for r in rs)  # start-up, exit
            text = " ".join(f"{k}={v:.2f}" for k, v in stages.items())
            print(f"{line} {(sec - START_UP_S) / floor:8.2f} {budget:7.2f} {rss:8.2f}  {text}  {ok}")


def compile_bytecode() -> None:
    """Write the package's bytecode, as installing a wheel does (``make`` does it for editable installs too).

    Without it, an editable install on a machine with ``PYTHONDONTWRITEBYTECODE`` set (the project's) compiles
    all its modules again in every fresh process: 0.07-0.1 s of the command's imports.
    """
    for name in ("hyperplex.common", "hyperplex.geo", "hyperplex.bio", "hyperplex.plugins"):  # as make does
        for folder in importlib.util.find_spec(name).submodule_search_locations:
            compileall.compile_dir(folder, quiet=1)


def main() -> None:
    """Generate (in a child process), measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1280)
    parser.add_argument("--samples", type=int, default=1242)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--methods", nargs="+", default=["mag1c"])
    args = parser.parse_args()
    here = str(Path(__file__).resolve().parent)
    subprocess.run([sys.executable, "-c", _GENERATE, here, str(args.lines), str(args.samples)], check=True)
    paths = make_scenes(args.lines, args.samples)  # generated by now: only the paths
    compile_bytecode()
    sizes = ", ".join(f"{k} {p.stat().st_size / 2**30:.2f} GiB" for k, p in paths.items())
    print(f"scene {args.lines} x {args.samples} x 285 ({sizes}), chunks {CHUNKS} gzip+shuffle")
    report(measure(paths, args.methods, args.repeat), args.repeat)


if __name__ == "__main__":
    main()
