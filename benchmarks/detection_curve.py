"""Detection curves per method on two synthetic scene families kept apart (tuning and evaluation).

Stage ``collect`` runs every method with vetting switched off (all candidates kept, each with its
vetting features, IME and the truth plume it overlaps) on the plume scenes and methane-free scenes of a
family (:mod:`hyperplex.geo.synth.settings`), and writes one JSON record per scene (resumable).
Stage ``report`` applies the committed vetting model (:mod:`hyperplex.geo.detect.vetting`, fitted on the
tuning family only by ``benchmarks/fit_vetting.py``) to the records and prints, per family and method:
probability of detection (POD) per truth-peak bin and per IME bin, the two target cells (peak >= 700
ppm·m and >= 100 px; 480-700 ppm·m and >= 60 px), false plumes per methane-free scene and the median IME
ratio (detected / true). ``--readme`` rewrites the table between the README's detection-validity markers.

    OMP_NUM_THREADS=1 nice -n 15 python benchmarks/detection_curve.py collect --family tuning --scenes 16 --free 8
    OMP_NUM_THREADS=1 nice -n 15 python benchmarks/detection_curve.py collect --family evaluation --scenes 16 --free 8
    python benchmarks/fit_vetting.py                      # tuning records -> geo/detect/vetting_model.json
    python benchmarks/detection_curve.py report --readme README.md
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

RECORDS = Path("/tmp/detect/records")
METHODS = ("mag1c", "mag1c-sas", "mf", "cem", "ace")
PEAK_BINS = (300.0, 480.0, 700.0, 1000.0, 1500.0, 2600.0)
IME_BINS = (0.0, 100.0, 300.0, 1000.0, 1e9)
MATCH_FRACTION = 0.3  # a candidate belongs to the truth plume holding this share of its pixels
SIZE = 220
README_BEGIN, README_END = "<!-- detection-curve:begin -->", "<!-- detection-curve:end -->"


def _match(cand: np.ndarray, truth_labels: np.ndarray) -> int | None:
    """Truth plume id holding most of the candidate's pixels (at least MATCH_FRACTION), else None."""
    ids = np.bincount(truth_labels[cand].astype(np.int64).ravel())
    if ids.size < 2 or ids[1:].max() < MATCH_FRACTION * cand.sum():
        return None
    return int(np.argmax(ids[1:]) + 1)


def _covers(cand: np.ndarray, cores: dict[int, np.ndarray]) -> list[int]:
    """Truth plumes with at least a quarter of their core (truth >= half its peak) inside the candidate."""
    return [pid for pid, core in cores.items() if cand[core].mean() >= 0.25]


def _scene_record(family: str, index: int, free: bool, methods: tuple[str, ...]) -> dict[str, Any]:
    """Run every method on one scene; candidates with features, IME and their matched truth plume."""
    from hyperplex.common.progress import quiet
    from hyperplex.geo.detect import DelineationConfig, DetectConfig, SceneSource, analyze
    from hyperplex.geo.synth import family_scene

    scene = family_scene(family, index, methane_free=free, size=SIZE)
    cube = np.moveaxis(scene.radiance, -1, 0)
    source = SceneSource.from_array(cube, scene.channels, pixel_size_m=float(np.sqrt(scene.pixel_area_m2)))
    truth = [{k: p[k] for k in ("id", "peak_ppmm", "pixels", "ime_kg", "shape")} for p in scene.plumes]
    cores = {p["id"]: (scene.plume_labels == p["id"]) & (scene.truth >= 0.5 * p["peak_ppmm"]) for p in scene.plumes}
    record: dict[str, Any] = {"family": family, "index": index, "methane_free": free, "truth": truth, "methods": {}}
    for method in methods:
        t = time.perf_counter()
        with quiet():
            result = analyze(source, DetectConfig(method=method, delineation=DelineationConfig(vet=False)))
        cands = []
        for plume in result.plumes:
            inside = result.labels == plume["id"]
            plume["truth_id"] = _match(inside, scene.plume_labels)
            plume["covers"] = _covers(inside, cores)
            cands.append({k: v for k, v in plume.items() if k not in ("bbox", "sensor_bbox")})
        record["methods"][method] = {"candidates": cands, "seconds": round(time.perf_counter() - t, 2),
                                     "background_sigma": result.found.background[1]}  # fmt: skip
    return record


def collect(family: str, scenes: int, free: int, methods: tuple[str, ...], out: Path) -> None:
    """Write ``<family>_<plume|free>_<index>.json`` records, skipping those already there."""
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(i, False) for i in range(scenes)] + [(i, True) for i in range(free)]
    jobs.sort(key=lambda job: job[0] / (free if job[1] else scenes))  # interleaved: any prefix is balanced
    for index, is_free in jobs:
        path = out / f"{family}_{'free' if is_free else 'plume'}_{index:03d}.json"
        if path.exists():
            continue
        t = time.perf_counter()
        record = _scene_record(family, index, is_free, methods)
        path.write_text(json.dumps(record, default=float))
        print(f"{path.name}: {time.perf_counter() - t:.0f} s", flush=True)


def load_records(out: Path, family: str) -> list[dict[str, Any]]:
    """All records of a family."""
    return [json.loads(p.read_text()) for p in sorted(out.glob(f"{family}_*.json"))]


def _kept(cands: list[dict[str, Any]], method: str, threshold: float) -> list[dict[str, Any]]:
    """Candidates the committed vetting model keeps (probability >= threshold)."""
    from hyperplex.geo.detect.vetting import plume_probability

    return [c for c in cands if plume_probability(c, method) >= threshold]


def evaluate(records: list[dict[str, Any]], method: str, threshold: float = 0.5) -> dict[str, Any]:
    """POD per bin, the target cells, false plumes per methane-free scene and the IME ratio of one method.

    A truth plume is detected when a kept candidate holds most of its pixels in it or covers a quarter of
    its core; a kept candidate that does neither for any plume is a false plume (reported per
    methane-free scene; false plumes in plume scenes are counted in ``false_in_plume_scenes``). The IME
    ratio is taken over plumes whose candidates hold no other plume.
    """
    rows, false, free_scenes, false_plume_scenes = [], 0, 0, 0
    for rec in records:
        kept = _kept(rec["methods"][method]["candidates"], method, threshold)
        if rec["methane_free"]:
            free_scenes += 1
            false += len(kept)
            continue
        false_plume_scenes += sum(c["truth_id"] is None and not c["covers"] for c in kept)
        for t in rec["truth"]:
            found = any(c["truth_id"] == t["id"] or t["id"] in c["covers"] for c in kept)
            mine = [c for c in kept if c["truth_id"] == t["id"]]
            alone = mine and all(set(c["covers"]) <= {t["id"]} for c in mine)  # IME only where not merged
            ime = sum(c["ime_kg"] or 0.0 for c in mine) / t["ime_kg"] if alone else np.nan
            rows.append((t["peak_ppmm"], t["pixels"], t["ime_kg"], found, ime))
    a = np.array(rows, dtype=np.float64).reshape(-1, 5)
    return {
        "pod_peak": _binned(a[:, 0], a[:, 3], PEAK_BINS),
        "pod_ime": _binned(a[:, 2], a[:, 3], IME_BINS),
        "target_strong": _pod(a[(a[:, 0] >= 700) & (a[:, 1] >= 100), 3]),
        "target_weak": _pod(a[(a[:, 0] >= 480) & (a[:, 0] < 700) & (a[:, 1] >= 60), 3]),
        "false_per_free_scene": false / free_scenes if free_scenes else float("nan"),
        "ime_ratio_median": float(np.nanmedian(a[:, 4])) if np.isfinite(a[:, 4]).any() else float("nan"),
        "plumes": len(a),
        "false_in_plume_scenes": false_plume_scenes,
        "free_scenes": free_scenes,
    }


def _pod(found: np.ndarray) -> tuple[float, int]:
    return (float(found.mean()) if found.size else float("nan"), int(found.size))


def _binned(values: np.ndarray, found: np.ndarray, edges: tuple[float, ...]) -> list[tuple[float, int]]:
    return [_pod(found[(values >= lo) & (values < hi)]) for lo, hi in itertools.pairwise(edges)]


def _cell(pod: tuple[float, int]) -> str:
    return "-" if not pod[1] else f"{pod[0]:.2f} ({pod[1]})"


def table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Markdown table: one row per family and method."""
    peak_names = [f"{lo:.0f}-{hi:.0f}" for lo, hi in itertools.pairwise(PEAK_BINS)]
    ime_names = ["<100 kg", "100-300 kg", "300-1000 kg", ">=1000 kg"]
    head = ["family", "method", "POD >=700 & >=100 px", "POD 480-700 & >=60 px", "false / free scene",
            "IME ratio median", *[f"POD {n} ppm·m" for n in peak_names], *[f"POD {n}" for n in ime_names]]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for family, per_method in results.items():
        for method, r in per_method.items():
            cells = [family, method, _cell(r["target_strong"]), _cell(r["target_weak"]),
                     f"{r['false_per_free_scene']:.2f} ({r['free_scenes']})", f"{r['ime_ratio_median']:.2f}",
                     *map(_cell, r["pod_peak"]), *map(_cell, r["pod_ime"])]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _write_readme(readme: Path, text: str) -> None:
    content = readme.read_text()
    if README_BEGIN not in content or README_END not in content:
        raise SystemExit(f"{readme}: markers {README_BEGIN} ... {README_END} not found.")
    head, rest = content.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(f"{head}{README_BEGIN}\n{text}\n{README_END}{tail}")


def report(out: Path, methods: tuple[str, ...], readme: Path | None) -> str:
    """Evaluate both families and print (and optionally write) the table."""
    results = {}
    for family in ("tuning", "evaluation"):
        records = load_records(out, family)
        if records:
            results[family] = {m: evaluate(records, m) for m in methods if m in records[0]["methods"]}
    text = table(results)
    print(text)
    if readme is not None:
        _write_readme(readme, text)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stage", choices=("collect", "report"))
    parser.add_argument("--family", choices=("tuning", "evaluation"), default="tuning")
    parser.add_argument("--scenes", type=int, default=16, help="plume scenes per family")
    parser.add_argument("--free", type=int, default=8, help="methane-free scenes (look-alikes, water)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--records", type=Path, default=RECORDS)
    parser.add_argument("--readme", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.stage == "collect":
        collect(args.family, args.scenes, args.free, tuple(args.methods), args.records)
    else:
        report(args.records, tuple(args.methods), args.readme)


if __name__ == "__main__":
    sys.exit(main())
