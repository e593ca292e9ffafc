"""Time the learned plume segmenters on a full-size EMIT scene, next to Mag1c in the same process.

Usage: ``python benchmarks/plume_inference.py [--lines 1280 --samples 1242 --threads 2 --device auto]``

The cube is the 2122-2488 nm window (49 bands) of a full 1280 x 1242 EMIT-like scene
(``benchmarks/methane_filters.py``'s ``emit_like_cube``); the full 285-band granule only adds reading. Each
method is timed as the detection pipeline calls it (features, tiled inference, probability), best of
``--repeat`` runs after a warm-up, with ``--threads`` torch threads; Mag1c is the package's ``mag1c``
(column-wise, 30 iterations, the compiled CPU engine). The ratio time / Mag1c time is printed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from methane_filters import emit_like_cube


def best_of(repeat: int, fn, *args, **kwargs) -> tuple[float, np.ndarray]:
    """Best wall time of ``repeat`` calls and the last output."""
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn(*args, **kwargs)
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    """Build the cube, warm up, time Mag1c and both learned methods, print times and ratios."""
    from hyperplex.geo.methane import mag1c
    from hyperplex.geo.methane.learned import learned_segmentation

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1280)
    parser.add_argument("--samples", type=int, default=1242)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cube, wl, fw, truth = emit_like_cube(args.lines, args.samples)
    small = (slice(None), slice(0, 64), slice(0, 64))
    mag1c(cube[small], wl, fw)  # compile the kernels
    t_mag1c, _ = best_of(args.repeat, mag1c, cube, wl, fw)
    print(f"scene {args.lines} x {args.samples} x {len(wl)} window bands, {args.threads} threads, device {args.device}")
    print(f"mag1c              {t_mag1c:7.2f} s")
    for name in ("hypersegformer_plume", "hyperefficientvit_plume"):
        options = dict(model=name, device=args.device)
        learned_segmentation(cube[small], wl, fw, **options)  # load the model
        seconds, prob = best_of(args.repeat, learned_segmentation, cube, wl, fw, **options)
        core = float(np.nanmean(prob[truth > 1000]))
        ratio = seconds / t_mag1c
        print(f"{name:24s} {seconds:7.2f} s  ratio to mag1c {ratio:5.2f}  mean p(plume) where truth > 1000: {core:.2f}")


if __name__ == "__main__":
    main()
