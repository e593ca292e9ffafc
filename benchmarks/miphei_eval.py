"""Evaluate H&E -> multiplex prediction on held-out synthetic slides: per-marker per-cell Pearson r and F1.

For each held-out slide (seeds from 1000 on; training used 1..N) the whole pipeline runs
(``predict_mif_steps`` with the true cell masks as ``labels``, so the model is scored, not the
segmentation). Per marker and cell: the mean predicted intensity against the truth (the noise-free
mean expression of ``hyperplex.bio.synth``), Pearson r over all cells, and F1 of the positive calls
(Otsu over the predicted means, as predict-mif writes them) against the true positives (Otsu over the
log of the true expression). Printed next to MIPHEI-ViT's published F1 (ORION CRC, Balezo et al.
2025), and next to the "type ceiling": the r a predictor that knows every cell's type exactly (and
nothing else) reaches, since the synthetic H&E carries cell type, not random within-type expression.
Markers expressed at random within a type (FOXP3, PD-1, PD-L1) are the control. A second pass scores
the nuclei found in the H&E (rgb2hed + watershed) by matching each to the true cell under its centroid.

Usage:
    OMP_NUM_THREADS=1 python benchmarks/miphei_eval.py --slides 2 --size 768 --out benchmarks/miphei_eval.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

#: MIPHEI-ViT's published per-cell F1 on ORION (our synthetic name -> (their name, F1)).
PUBLISHED_F1 = {"PanCK": ("Pan-CK", 0.88), "CD3": ("CD3e", 0.57), "SMA": ("SMA", 0.56), "CD68": ("CD68", 0.36),
                "CD20": ("CD20", 0.30)}  # fmt: skip
#: Markers whose on/off is random within a cell type: no H&E signal by construction.
CONTROL = ("FOXP3", "PD-1", "PD-L1")


def otsu_positive(values: np.ndarray) -> np.ndarray:
    """True positives: Otsu on log expression (negatives sit at the 2% antibody background)."""
    from skimage.filters import threshold_otsu

    logv = np.log(np.maximum(values, 1e-3))
    return logv > threshold_otsu(logv) if np.ptp(logv) > 0 else np.zeros(len(values), bool)


def f1(pred: np.ndarray, truth: np.ndarray) -> float:
    """F1 of boolean calls (NaN when neither side has a positive)."""
    tp, fp, fn = (pred & truth).sum(), (pred & ~truth).sum(), (~pred & truth).sum()
    return float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else float("nan")


def type_ceiling(truth: np.ndarray, types: np.ndarray) -> np.ndarray:
    """Per marker, r between the truth and its per-cell-type mean (the best a cell-type oracle does)."""
    fitted = np.zeros_like(truth)
    for kind in np.unique(types):
        fitted[types == kind] = truth[types == kind].mean(axis=0)
    return np.array([np.corrcoef(truth[:, j], fitted[:, j])[0, 1] for j in range(truth.shape[1])])


def run_slide(model, seed: int, size: int, work: Path) -> dict:
    """Predict one held-out slide; return predicted means, calls, truth, types and the segmentation match."""
    from hyperplex.bio.predict_mif import predict_mif
    from hyperplex.bio.synth import tissue

    sample = tissue(size=size, markers=16, seed=seed)
    out = work / f"slide{seed}.ome.zarr"
    result = predict_mif(sample.he, out, model=model, labels=sample.cells, pixel_size_um=0.5)
    import pandas as pd

    table = pd.read_csv(result.cells_csv).sort_values("cell_id")
    names = list(result.markers.names)
    idx = {n: list(sample.channels.names).index(n) for n in names}
    truth = sample.expression[table.cell_id.to_numpy() - 1][:, [idx[n] for n in names]]
    calls = table[[f"{n}_positive" for n in names]].to_numpy().astype(bool)
    seg = _segmentation_match(sample, out, names, idx)
    return {"names": names, "pred": table[names].to_numpy(), "calls": calls, "truth": truth,
            "types": sample.cell_types[table.cell_id.to_numpy() - 1], "seg": seg}  # fmt: skip


def _segmentation_match(sample, zarr_path: Path, names: list[str], idx: dict) -> dict:
    """Cells found in the H&E, matched to the true cell under each centroid: match rate and r per marker."""
    import dask.array as da

    from hyperplex.bio import open_image
    from hyperplex.bio.cell_table import measure_slide
    from hyperplex.common.models.inference import run_steps

    markers = open_image(zarr_path).levels[0]
    steps = measure_slide(sample.he, da.asarray(markers), None, lambda v: v.astype(np.float32) / 255, (0.5, 0.5))
    blocks, _, _ = run_steps(steps, lambda *_: None)
    means = np.concatenate([b.means for b in blocks])
    cy, cx = np.concatenate([b.centroid for b in blocks]).round().astype(int).T
    owner = sample.cells[np.clip(cy, 0, sample.cells.shape[0] - 1), np.clip(cx, 0, sample.cells.shape[1] - 1)]
    ok = owner > 0
    truth = sample.expression[owner[ok] - 1][:, [idx[n] for n in names]]
    unique = len(np.unique(owner[ok]))
    r = [float(np.corrcoef(means[ok, j], truth[:, j])[0, 1]) for j in range(len(names))]
    return {"found": len(owner), "true_cells": int(sample.count), "matched_unique": unique, "r": r}


def summarise(slides: list[dict]) -> dict:
    """Pool the cells of every slide and score each marker."""
    names = slides[0]["names"]
    pred, calls, truth = (np.concatenate([s[k] for s in slides]) for k in ("pred", "calls", "truth"))
    types = np.concatenate([s["types"] for s in slides])
    ceiling = type_ceiling(truth, types)
    seg_r = np.mean([s["seg"]["r"] for s in slides], axis=0)
    rows = {}
    for j, name in enumerate(names):
        r = float(np.corrcoef(pred[:, j], truth[:, j])[0, 1])
        rows[name] = {
            "r": r, "f1": f1(calls[:, j], otsu_positive(truth[:, j])), "type_ceiling_r": float(ceiling[j]),
            "r_segmented_cells": float(seg_r[j]), "published_f1": PUBLISHED_F1.get(name, (None, None))[1],
            "control": name in CONTROL,
        }  # fmt: skip
    seg = {k: sum(s["seg"][k] for s in slides) for k in ("found", "true_cells", "matched_unique")}
    return {"cells": len(truth), "markers": rows, "segmentation": seg}


def table(summary: dict) -> str:
    """The README table (markdown)."""
    lines = [
        "| marker | r | F1 | type-ceiling r | r (H&E nuclei) | MIPHEI-ViT F1 (ORION) |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in summary["markers"].items():
        published = PUBLISHED_F1.get(name)
        pub = f"{published[1]:.2f} ({published[0]})" if published else ""
        label = f"{name} (control)" if row["control"] else name
        lines.append(f"| {label} | {row['r']:.2f} | {row['f1']:.2f} | {row['type_ceiling_r']:.2f} | "
                     f"{row['r_segmented_cells']:.2f} | {pub} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    """Evaluate and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="miphei_small", help="Preset with weights or a model file.")
    parser.add_argument("--slides", type=int, default=2)
    parser.add_argument("--size", type=int, default=768)
    parser.add_argument("--out", type=Path, default=None, help="Write the summary JSON here.")
    args = parser.parse_args()
    from hyperplex.bio.predict_mif import load_mif_model
    from hyperplex.common.progress import quiet

    model = load_mif_model(args.model)
    with tempfile.TemporaryDirectory() as tmp, quiet():
        slides = [run_slide(model, 1000 + i, args.size, Path(tmp)) for i in range(args.slides)]
    summary = summarise(slides) | {"model": args.model, "slides": args.slides, "size": args.size}
    print(table(summary))
    seg = summary["segmentation"]
    print(f"\n{summary['cells']} cells; H&E nuclei: {seg['found']} found, {seg['matched_unique']} of "
          f"{seg['true_cells']} true cells matched")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
