"""Fit the calibrated vetting model on the tuning scene family only, and draw its reliability plot.

Reads the candidate records of ``benchmarks/detection_curve.py collect`` (every candidate of every
method, vetting off, each labelled by whether it overlaps a truth plume), fits one ridge logistic model
per method plus a pooled one (:class:`hyperplex.geo.detect.calibration.LogisticModel`) on the *tuning*
records, writes them to ``geo/detect/vetting_model.json`` (package data) and draws
``docs/vetting_reliability.png``: observed plume frequency against predicted probability, on the tuning
family (in sample) and on the evaluation family (held out), with the Brier score and the expected
calibration error of each. The ridge penalty is chosen by cross-validation over tuning scenes (folds of
whole scenes, held-out log loss), so the evaluation family plays no part in any choice.

    python benchmarks/fit_vetting.py [--records /tmp/detect/records]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from detection_curve import RECORDS, load_records

from hyperplex.geo.detect.calibration import MODEL_PATH, LogisticModel, feature_vector, save_models

ROOT = Path(__file__).resolve().parents[1]
PLOT = ROOT / "docs" / "vetting_reliability.png"
COMMAND = "python benchmarks/fit_vetting.py"
BINS = np.linspace(0.0, 1.0, 11)


def dataset(records: list[dict[str, Any]], method: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels (1: overlaps a truth plume) of the candidates of ``method`` (None: all)."""
    x, y = [], []
    for rec in records:
        for name, result in rec["methods"].items():
            if method is not None and name != method:
                continue
            for cand in result["candidates"]:
                if cand.get("stripe_like"):
                    continue
                x.append(feature_vector(cand))
                y.append(float(cand["truth_id"] is not None or bool(cand["covers"])))
    return np.array(x).reshape(-1, 7), np.array(y)


MIN_PER_CLASS = 20  # a method gets its own model only with this many plumes and non-plumes
RIDGES = (0.3, 1.0, 3.0, 10.0, 30.0, 100.0)  # candidates for the cross-validated ridge penalty
FOLDS = 4


def fit(records: list[dict[str, Any]], ridge: float = 1.0) -> dict[str, LogisticModel]:
    """The pooled model ``"*"`` and one per method with at least MIN_PER_CLASS candidates of each class."""
    models = {"*": LogisticModel.fit(*dataset(records, None), ridge=ridge)}
    for method in sorted({m for rec in records for m in rec["methods"]}):
        x, y = dataset(records, method)
        if min(y.sum(), (1 - y).sum()) >= MIN_PER_CLASS:
            models[method] = LogisticModel.fit(x, y, ridge=ridge)
    return models


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log likelihood of labels ``y`` under probabilities ``p``."""
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def cross_validate(records: list[dict[str, Any]], ridges: tuple[float, ...] = RIDGES) -> dict[float, float]:
    """Held-out log loss per ridge: scenes dealt into FOLDS folds, each predicted by a fit on the others."""
    folds = [records[i::FOLDS] for i in range(FOLDS)]
    scores = {}
    for ridge in ridges:
        p, y = [], []
        for k, held in enumerate(folds):
            rest = [rec for j, fold in enumerate(folds) if j != k for rec in fold]
            pk, yk = predictions(held, fit(rest, ridge))
            p.append(pk)
            y.append(yk)
        scores[ridge] = log_loss(np.concatenate(p), np.concatenate(y))
    return scores


def predictions(records: list[dict[str, Any]], models: dict[str, LogisticModel]) -> tuple[np.ndarray, np.ndarray]:
    """Predicted probability and label of every candidate, each by its own method's model."""
    p, y = [], []
    for method in sorted({m for rec in records for m in rec["methods"]}):
        x, labels = dataset(records, method)
        if len(x):
            p.append(models.get(method, models["*"]).probability(x))
            y.append(labels)
    return np.concatenate(p), np.concatenate(y)


def reliability(p: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Per-bin mean prediction, observed frequency and count; Brier score; expected calibration error."""
    idx = np.clip(np.digitize(p, BINS) - 1, 0, len(BINS) - 2)
    rows = [(p[idx == b].mean(), y[idx == b].mean(), int((idx == b).sum())) for b in range(len(BINS) - 1)
            if (idx == b).any()]  # fmt: skip
    ece = sum(n * abs(mp - fy) for mp, fy, n in rows) / len(p)
    return {"bins": rows, "brier": float(np.mean((p - y) ** 2)), "ece": float(ece), "n": len(p), "pos": int(y.sum())}


def plot(curves: dict[str, dict[str, Any]], path: Path) -> None:
    """Reliability diagram of the families."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5), dpi=110)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="perfect calibration")
    for (name, c), colour in zip(curves.items(), ("tab:blue", "tab:orange")):
        mp, fy, n = map(np.array, zip(*c["bins"]))
        ax.plot(
            mp, fy, "o-", color=colour, label=f"{name}: Brier {c['brier']:.3f}, ECE {c['ece']:.3f} ({c['n']} cand.)"
        )
        for xi, yi, ni in zip(mp, fy, n):
            ax.annotate(str(ni), (xi, yi), fontsize=6, xytext=(3, -8), textcoords="offset points", color=colour)
    ax.set(xlabel="predicted plume probability", ylabel="observed fraction that are plumes", xlim=(0, 1), ylim=(0, 1),
           title="Vetting calibration (fit on tuning family only)")  # fmt: skip
    ax.legend(fontsize=7, loc="lower right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=Path, default=RECORDS)
    args = parser.parse_args(argv)
    tuning, evaluation = load_records(args.records, "tuning"), load_records(args.records, "evaluation")
    cv = cross_validate(tuning)
    ridge = min(cv, key=cv.get)
    models = fit(tuning, ridge)
    _x, y = dataset(tuning, None)
    meta = {"fitted_on": f"tuning family: {len(tuning)} scenes, {len(y)} candidates ({int(y.sum())} plumes)",
            "command": COMMAND if args.records == RECORDS else f"{COMMAND} --records {args.records}",
            "label": "candidate overlaps a truth plume", "ridge": ridge,
            "cv_log_loss": {str(k): round(v, 4) for k, v in cv.items()}}  # fmt: skip
    print("cross-validated log loss per ridge (tuning scenes):", meta["cv_log_loss"], "-> ridge", ridge)
    save_models(MODEL_PATH, models, meta)
    curves = {"tuning (fit)": reliability(*predictions(tuning, models))}
    if evaluation:
        curves["evaluation (held out)"] = reliability(*predictions(evaluation, models))
    plot(curves, PLOT)
    for name, c in curves.items():
        print(f"{name}: Brier {c['brier']:.3f}, ECE {c['ece']:.3f}, {c['n']} candidates, {c['pos']} plumes")
    print(f"wrote {MODEL_PATH} and {PLOT}")


if __name__ == "__main__":
    sys.exit(main())
