"""Detection curves per method on two synthetic scene families kept apart (tuning and evaluation).

Stage ``collect`` runs every method with vetting switched off (all candidates kept, each with its
vetting features, IME and the truth plume it overlaps) on the plume scenes and methane-free scenes of a
family (:mod:`hyperplex.geo.synth.settings`), and writes one JSON record per scene (resumable).
Stage ``report`` applies the committed vetting model (:mod:`hyperplex.geo.detect.vetting`, fitted on the
tuning family only by ``benchmarks/fit_vetting.py``) to the records and prints, per family and method:
probability of detection (POD) per truth-peak bin and per IME bin, the two target cells (peak >= 700
ppm·m and >= 100 px; 480-700 ppm·m and >= 60 px), false plumes per methane-free scene and the median IME
ratio (detected / true), plume-level F1 and pixel F1 (truth >= 100 ppm·m). ``--readme`` rewrites the table
between the README's detection-validity markers.

The learned methods (``hypersegformer``, ``hyperefficientvit``) have no vetting model: the report keeps all
their candidates (row ``METHOD``) and also shows them vetted as ``hyperplex methane detect`` does by default
(row ``METHOD+vet``). A record that exists gets only the methods it lacks (``--refresh`` reruns them), and
``--weights METHOD@TAG=FILE`` runs a learned method with other weights under the name ``METHOD@TAG``.
``--learned-readme`` writes the evaluation family's compact table (POD per peak bin, false plumes per
free scene, plume and pixel F1, and the best filter per bin) between the learned-plume markers.

    OMP_NUM_THREADS=1 nice -n 15 python benchmarks/detection_curve.py collect --family tuning --scenes 16 --free 8
    OMP_NUM_THREADS=1 nice -n 15 python benchmarks/detection_curve.py collect --family evaluation --scenes 16 --free 8
    python benchmarks/fit_vetting.py                      # tuning records -> geo/detect/vetting_model.json
    python benchmarks/detection_curve.py report --readme README.md
    OMP_NUM_THREADS=1 python benchmarks/detection_curve.py collect --family evaluation --methods mag1c \
        hypersegformer hyperefficientvit --refresh        # learned methods added, Mag1c with pixel counts
    python benchmarks/detection_curve.py report --learned-readme README.md
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
FILTERS = ("mag1c", "mag1c-sas", "mf", "cem", "ace")
#: Learned methods: their raster is already a plume probability (thresholded at 0.5 by the delineation) and
#: no vetting model was fitted for them, so the report keeps every candidate they delineate (row ``METHOD``),
#: and shows next to it what ``hyperplex methane detect`` does by default (row ``METHOD+vet``: the committed
#: vetting model's pooled ``*`` model applied to their candidates).
LEARNED = ("hypersegformer", "hyperefficientvit")
VETTED = "+vet"
METHODS = (*FILTERS, *LEARNED)
PIXEL_PPMM = 100.0  # truth enhancement at or above which a pixel counts as plume for pixel F1 (the training mask's)
PEAK_BINS = (300.0, 480.0, 700.0, 1000.0, 1500.0, 2600.0)
IME_BINS = (0.0, 100.0, 300.0, 1000.0, 1e9)
MATCH_FRACTION = 0.3  # a candidate belongs to the truth plume holding this share of its pixels
SIZE = 220
README_BEGIN, README_END = "<!-- detection-curve:begin -->", "<!-- detection-curve:end -->"
LEARNED_BEGIN, LEARNED_END = "<!-- plume-learned-eval:begin -->", "<!-- plume-learned-eval:end -->"


def _match(cand: np.ndarray, truth_labels: np.ndarray) -> int | None:
    """Truth plume id holding most of the candidate's pixels (at least MATCH_FRACTION), else None."""
    ids = np.bincount(truth_labels[cand].astype(np.int64).ravel())
    if ids.size < 2 or ids[1:].max() < MATCH_FRACTION * cand.sum():
        return None
    return int(np.argmax(ids[1:]) + 1)


def _covers(cand: np.ndarray, cores: dict[int, np.ndarray]) -> list[int]:
    """Truth plumes with at least a quarter of their core (truth >= half its peak) inside the candidate."""
    return [pid for pid, core in cores.items() if cand[core].mean() >= 0.25]


def _scene_record(
    family: str, index: int, free: bool, methods: tuple[str, ...], options: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Run every method on one scene; candidates with features, IME, truth pixels and their matched truth plume.

    ``options`` holds per-method ``method_options`` (e.g. a learned method's ``weights`` file).
    """
    from hyperplex.common.progress import quiet
    from hyperplex.geo.detect import DelineationConfig, DetectConfig, SceneSource, analyze
    from hyperplex.geo.synth import family_scene

    scene = family_scene(family, index, methane_free=free, size=SIZE)
    cube = np.moveaxis(scene.radiance, -1, 0)
    source = SceneSource.from_array(cube, scene.channels, pixel_size_m=float(np.sqrt(scene.pixel_area_m2)))
    truth = [{k: p[k] for k in ("id", "peak_ppmm", "pixels", "ime_kg", "shape")} for p in scene.plumes]
    cores = {p["id"]: (scene.plume_labels == p["id"]) & (scene.truth >= 0.5 * p["peak_ppmm"]) for p in scene.plumes}
    plume_pixels = scene.truth >= PIXEL_PPMM
    record: dict[str, Any] = {"family": family, "index": index, "methane_free": free, "truth": truth,
                              "truth_pixels": int(plume_pixels.sum()), "methods": {}}  # fmt: skip
    for method in methods:
        t = time.perf_counter()
        cfg = DetectConfig(method=method.split("@")[0], delineation=DelineationConfig(vet=False),
                           method_options=dict((options or {}).get(method, {})))  # fmt: skip
        with quiet():
            result = analyze(source, cfg)
        cands = []
        for plume in result.plumes:
            inside = result.labels == plume["id"]
            plume["truth_id"] = _match(inside, scene.plume_labels)
            plume["covers"] = _covers(inside, cores)
            plume["truth_pixels"] = int(plume_pixels[inside].sum())
            cands.append({k: v for k, v in plume.items() if k not in ("bbox", "sensor_bbox")})
        record["methods"][method] = {"candidates": cands, "seconds": round(time.perf_counter() - t, 2),
                                     "background_sigma": result.found.background[1]}  # fmt: skip
    return record


def collect(family: str, scenes: int, free: int, methods: tuple[str, ...], out: Path, *, refresh: bool = False,
            options: dict[str, dict[str, Any]] | None = None) -> None:  # fmt: skip
    """Write ``<family>_<plume|free>_<index>.json`` records.

    A record already there gets only the methods it lacks (all of ``methods`` with ``refresh``), so learned
    methods can be added to the filters' records without running the filters again.
    """
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(i, False) for i in range(scenes)] + [(i, True) for i in range(free)]
    jobs.sort(key=lambda job: job[0] / (free if job[1] else scenes))  # interleaved: any prefix is balanced
    for index, is_free in jobs:
        path = out / f"{family}_{'free' if is_free else 'plume'}_{index:03d}.json"
        old = json.loads(path.read_text()) if path.exists() else None
        todo = tuple(m for m in methods if refresh or old is None or m not in old["methods"])
        if not todo:
            continue
        t = time.perf_counter()
        record = _scene_record(family, index, is_free, todo, options)
        if old is not None:
            record["methods"] = {**old["methods"], **record["methods"]}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, default=float))
        tmp.replace(path)
        print(f"{path.name} ({', '.join(todo)}): {time.perf_counter() - t:.0f} s", flush=True)


def load_records(out: Path, family: str) -> list[dict[str, Any]]:
    """All records of a family."""
    return [json.loads(p.read_text()) for p in sorted(out.glob(f"{family}_*.json"))]


def _kept(cands: list[dict[str, Any]], method: str, threshold: float) -> list[dict[str, Any]]:
    """Candidates the committed vetting model keeps (probability >= threshold); all of a learned method's.

    ``method`` may be ``NAME@TAG`` (a learned method run with other weights) and end in ``+vet`` (a
    learned method's candidates vetted like the CLI does by default).
    """
    from hyperplex.geo.detect.vetting import plume_probability

    name = method.removesuffix(VETTED).split("@")[0]
    if name in LEARNED and not method.endswith(VETTED):
        return list(cands)
    return [c for c in cands if plume_probability(c, name) >= threshold]


def evaluate(records: list[dict[str, Any]], method: str, threshold: float = 0.5) -> dict[str, Any]:
    """POD per bin, the target cells, false plumes per methane-free scene, F1 scores and the IME ratio of one method.

    A truth plume is detected when a kept candidate holds most of its pixels in it or covers a quarter of
    its core; a kept candidate that does neither for any plume is a false plume (reported per
    methane-free scene; false plumes in plume scenes are counted in ``false_in_plume_scenes``). The IME
    ratio is taken over plumes whose candidates hold no other plume. Plume F1: precision = kept candidates
    that find a plume over all kept candidates (methane-free scenes included), recall = share of truth
    plumes detected. Pixel F1: the kept candidates' pixels against the truth >= ``PIXEL_PPMM`` pixels of
    every scene (NaN for records collected before truth pixels were recorded).
    """
    rows, false, free_scenes, false_plume_scenes, kept_total = [], 0, 0, 0, 0
    pixels = np.zeros(3)  # true positives, predicted, truth
    for rec in records:
        kept = _kept(rec["methods"][method.removesuffix(VETTED)]["candidates"], method, threshold)
        kept_total += len(kept)
        pixels += _pixel_counts(rec, kept)
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
    plume_precision = 1.0 - _ratio(false + false_plume_scenes, kept_total)
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
        "plume_f1": _f1(plume_precision, float(a[:, 3].mean()) if len(a) else float("nan")),
        "pixel_f1": _f1(_ratio(pixels[0], pixels[1]), _ratio(pixels[0], pixels[2])),
    }


def _pixel_counts(rec: dict[str, Any], kept: list[dict[str, Any]]) -> np.ndarray:
    """(true positive, predicted, truth) plume pixels of one scene; NaN when the record lacks truth pixels."""
    if "truth_pixels" not in rec or any("truth_pixels" not in c for c in kept):
        return np.full(3, np.nan)
    return np.array([sum(c["truth_pixels"] for c in kept), sum(c["pixels"] for c in kept), rec["truth_pixels"]],
                    dtype=np.float64)  # fmt: skip


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else float("nan")


def _f1(precision: float, recall: float) -> tuple[float, float, float]:
    """(F1, precision, recall); F1 is 0 when both are 0 and NaN when either is undefined."""
    if not (np.isfinite(precision) and np.isfinite(recall)):
        return (float("nan"), precision, recall)
    return (2 * precision * recall / (precision + recall) if precision + recall else 0.0, precision, recall)


def _pod(found: np.ndarray) -> tuple[float, int]:
    return (float(found.mean()) if found.size else float("nan"), int(found.size))


def _binned(values: np.ndarray, found: np.ndarray, edges: tuple[float, ...]) -> list[tuple[float, int]]:
    return [_pod(found[(values >= lo) & (values < hi)]) for lo, hi in itertools.pairwise(edges)]


def _cell(pod: tuple[float, int]) -> str:
    return "-" if not pod[1] else f"{pod[0]:.2f} ({pod[1]})"


def _f1_cell(f1: tuple[float, float, float]) -> str:
    return "-" if not np.isfinite(f1[0]) else f"{f1[0]:.2f} ({f1[1]:.2f} / {f1[2]:.2f})"


def table(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    """Markdown table: one row per family and method."""
    peak_names = [f"{lo:.0f}-{hi:.0f}" for lo, hi in itertools.pairwise(PEAK_BINS)]
    ime_names = ["<100 kg", "100-300 kg", "300-1000 kg", ">=1000 kg"]
    head = ["family", "method", "POD >=700 & >=100 px", "POD 480-700 & >=60 px", "false / free scene",
            "IME ratio median", "plume F1 (P / R)", "pixel F1 (P / R)", *[f"POD {n} ppm·m" for n in peak_names],
            *[f"POD {n}" for n in ime_names]]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for family, per_method in results.items():
        for method, r in per_method.items():
            cells = [family, method, _cell(r["target_strong"]), _cell(r["target_weak"]),
                     f"{r['false_per_free_scene']:.2f} ({r['free_scenes']})", f"{r['ime_ratio_median']:.2f}",
                     _f1_cell(r["plume_f1"]), _f1_cell(r["pixel_f1"]), *map(_cell, r["pod_peak"]),
                     *map(_cell, r["pod_ime"])]  # fmt: skip
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compact_table(per_method: dict[str, dict[str, Any]]) -> str:
    """Markdown table of one family: POD per peak bin, false plumes per free scene, plume and pixel F1.

    A last row gives, per bin, the best POD of any filter (:data:`FILTERS`) evaluated.
    """
    peak_names = [f"{lo:.0f}-{hi:.0f}" for lo, hi in itertools.pairwise(PEAK_BINS)]
    head = ["method", *[f"POD {n} ppm·m" for n in peak_names], "false / free scene", "plume F1 (P / R)",
            "pixel F1 (P / R)"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method, r in per_method.items():
        cells = [method, *map(_cell, r["pod_peak"]), f"{r['false_per_free_scene']:.2f} ({r['free_scenes']})",
                 _f1_cell(r["plume_f1"]), _f1_cell(r["pixel_f1"])]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    filters = [r for m, r in per_method.items() if m in FILTERS]
    if filters:
        best = [max((r["pod_peak"][i] for r in filters), key=lambda pod: pod[0]) for i in range(len(peak_names))]
        lines.append("| " + " | ".join(["best filter per bin", *map(_cell, best), "-", "-", "-"]) + " |")
    return "\n".join(lines)


def _write_readme(readme: Path, text: str, begin: str = README_BEGIN, end: str = README_END) -> None:
    content = readme.read_text()
    if begin not in content or end not in content:
        raise SystemExit(f"{readme}: markers {begin} ... {end} not found.")
    head, rest = content.split(begin, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{begin}\n{text}\n{end}{tail}")


def _methods_in(records: list[dict[str, Any]], methods: tuple[str, ...] | None) -> list[str]:
    """``methods`` present in every record; None: every method present in all of them (filters first)."""
    common = set.intersection(*(set(r["methods"]) for r in records))
    order = list(methods) if methods else [*METHODS, *sorted(common - set(METHODS))]
    found = [m for m in order if m.removesuffix(VETTED) in common]
    if methods:
        return found
    return [v for m in found for v in ((m, m + VETTED) if m.split("@")[0] in LEARNED else (m,))]


def report(out: Path, methods: tuple[str, ...] | None, readme: Path | None, learned_readme: Path | None = None) -> str:
    """Evaluate both families and print (and optionally write) the tables.

    ``readme`` gets the full table between the detection-curve markers; ``learned_readme`` the evaluation
    family's compact table between the learned-plume markers.
    """
    results = {}
    for family in ("tuning", "evaluation"):
        records = load_records(out, family)
        if records:
            results[family] = {m: evaluate(records, m) for m in _methods_in(records, methods)}
    text = table(results)
    compact = compact_table(results.get("evaluation", {}))
    print(text, compact, sep="\n\n")
    if readme is not None:
        _write_readme(readme, text)
    if learned_readme is not None:
        _write_readme(learned_readme, compact, LEARNED_BEGIN, LEARNED_END)
    return text


def _weights(items: list[str]) -> dict[str, dict[str, Any]]:
    """``KEY=PATH`` items as per-method options ``{KEY: {"weights": PATH}}``."""
    out = {}
    for item in items:
        key, sep, path = item.partition("=")
        if not sep or key.split("@")[0] not in LEARNED:
            raise SystemExit(f"--weights takes METHOD[@TAG]=FILE with METHOD one of {LEARNED}; got {item!r}.")
        out[key] = {"weights": path}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stage", choices=("collect", "report"))
    parser.add_argument("--family", choices=("tuning", "evaluation"), default="tuning")
    parser.add_argument("--scenes", type=int, default=16, help="plume scenes per family")
    parser.add_argument("--free", type=int, default=8, help="methane-free scenes (look-alikes, water)")
    parser.add_argument("--methods", nargs="+", default=None,
                        help="collect: default the filters (the vetting fit reads every method collected on tuning); "
                        "report: default all in every record; "
                        "METHOD@TAG names a learned method run with --weights METHOD@TAG=FILE")  # fmt: skip
    parser.add_argument("--weights", nargs="*", default=[], help="METHOD[@TAG]=FILE: a learned method's model file")
    parser.add_argument("--refresh", action="store_true", help="collect: rerun the methods already in a record")
    parser.add_argument("--records", type=Path, default=RECORDS)
    parser.add_argument("--readme", type=Path, default=None)
    parser.add_argument("--learned-readme", type=Path, default=None, help="write the learned-plume table here")
    args = parser.parse_args(argv)
    if args.stage == "collect":
        collect(args.family, args.scenes, args.free, tuple(args.methods or FILTERS), args.records,
                refresh=args.refresh, options=_weights(args.weights))  # fmt: skip
    else:
        report(args.records, tuple(args.methods) if args.methods else None, args.readme, args.learned_readme)


if __name__ == "__main__":
    sys.exit(main())
