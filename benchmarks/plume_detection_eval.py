"""Pixel and plume-level scores of the learned segmenters next to Mag1c on held-out synthetic scenes.

Usage: ``python benchmarks/plume_detection_eval.py [--scenes 16 --seed 1 --methods mag1c,hypersegformer,...]``

Scenes come from the training-tile recipe (:func:`hyperplex.geo.methane.plume_tiles.scene_settings`) with
another seed (training uses seed 0), so none was seen in training: 0-4 plumes of 200-5000 ppm·m, look-alikes,
water, fill columns, flares, saturated spots. Every method runs the full detection pipeline
(:func:`hyperplex.geo.detect.analyze`: masks, method, delineation, vetting) with its defaults. Scores:

* pixel precision / recall / F1 of the kept plumes' pixels against truth >= 100 ppm·m (all scenes pooled);
* plume level: a true plume is found when a kept plume covers one of its pixels with truth >= 100 ppm·m;
  a kept plume touching no true plume pixel is a false plume; F1 = 2 TP / (2 TP + FN + FP);
* POD per peak-strength bin and false plumes per methane-free scene.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

BINS = (200, 500, 1000, 2000, 5001)
THRESHOLD_PPMM = 100.0


def score_scene(scene, labels: np.ndarray) -> dict:
    """Pixel counts, found/missed plumes (with peaks) and false plumes of one scene."""
    truth = scene.truth >= THRESHOLD_PPMM
    found = labels > 0
    out = {
        "tp_px": int((truth & found).sum()),
        "fp_px": int((~truth & found).sum()),
        "fn_px": int((truth & ~found).sum()),
    }
    hits = []
    for p in scene.plumes:
        inside = (scene.plume_labels == p["id"]) & truth
        if inside.any():
            hits.append((p["peak_ppmm"], bool(found[inside].any())))
    out["plumes"] = hits
    touched = set(np.unique(labels[truth])) - {0}
    out["false"] = len(set(np.unique(labels)) - {0} - touched)
    return out


def summarize(rows: list[dict]) -> dict:
    """Pooled pixel F1, plume F1, POD per bin and false plumes per methane-free scene."""
    tp, fp, fn = (sum(r[k] for r in rows) for k in ("tp_px", "fp_px", "fn_px"))
    hits = [h for r in rows for h in r["plumes"]]
    ptp = sum(found for _, found in hits)
    pfn = len(hits) - ptp
    pfp = sum(r["false"] for r in rows)
    free = [r for r in rows if not r["plumes"]]
    pod = {}
    for lo, hi in itertools.pairwise(BINS):
        inbin = [found for peak, found in hits if lo <= peak < hi]
        pod[f"{lo}-{min(hi, 5000)}"] = (sum(inbin), len(inbin))
    return {
        "pixel_precision": tp / max(tp + fp, 1), "pixel_recall": tp / max(tp + fn, 1),
        "pixel_f1": 2 * tp / max(2 * tp + fp + fn, 1), "plume_f1": 2 * ptp / max(2 * ptp + pfn + pfp, 1),
        "pod": pod, "false_plumes": pfp, "false_per_free_scene": sum(r["false"] for r in free) / max(len(free), 1),
        "free_scenes": len(free),
    }  # fmt: skip


def run(scenes: int, seed: int, methods: list[str], size: int) -> dict[str, dict]:
    """Generate the held-out scenes and score every method on each."""
    from hyperplex.geo.detect import DetectConfig, analyze
    from hyperplex.geo.detect.source import SceneSource
    from hyperplex.geo.methane.plume_tiles import TileRecipe, scene_settings
    from hyperplex.geo.synth import emit_scene

    recipe = TileRecipe(scenes=scenes, seed=seed, size=size)
    rows: dict[str, list[dict]] = {m: [] for m in methods}
    seconds = dict.fromkeys(methods, 0.0)
    for i in range(scenes):
        scene = emit_scene(**scene_settings(recipe, i))
        source = SceneSource.from_array(np.moveaxis(scene.radiance, -1, 0), scene.channels, pixel_size_m=60.0)
        for m in methods:
            t = time.perf_counter()
            result = analyze(source, DetectConfig(method=m))
            seconds[m] += time.perf_counter() - t
            rows[m].append(score_scene(scene, result.labels))
    return {m: summarize(rows[m]) | {"seconds": seconds[m]} for m in methods}


def main() -> None:
    """Parse the arguments, run, print one block per method."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--methods", default="mag1c,mag1c-sas,hypersegformer,hyperefficientvit")
    args = parser.parse_args()
    from hyperplex.common.progress import quiet

    with quiet():
        results = run(args.scenes, args.seed, args.methods.split(","), args.size)
    print(
        f"{args.scenes} held-out scenes (seed {args.seed}, {args.size} x {args.size}); truth >= {THRESHOLD_PPMM} ppm·m"
    )
    for m, r in results.items():
        pod = "  ".join(f"{k}: {a}/{n}" for k, (a, n) in r["pod"].items())
        print(
            f"{m:18s} pixel P/R/F1 {r['pixel_precision']:.3f}/{r['pixel_recall']:.3f}/{r['pixel_f1']:.3f}  "
            f"plume F1 {r['plume_f1']:.3f}  false plumes {r['false_plumes']} "
            f"({r['false_per_free_scene']:.2f} per methane-free scene, {r['free_scenes']} such)  {r['seconds']:.1f} s"
        )
        print(f"{'':18s} POD by peak ppm·m  {pod}")


if __name__ == "__main__":
    main()
