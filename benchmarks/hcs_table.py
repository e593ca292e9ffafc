"""Hierarchical Channel Sampling reproduced: accuracy vs channels kept at test time (docs/hcs.md).

Task: the cell type (7 classes) of the cell at the centre of a 32 x 32 crop of synthetic multiplex
tissue (``hyperplex.bio.synth.tissue``, 8 markers, 0.5 µm pixels). Train tissues and a held-out test
tissue are different seeds. The models are trained with the shared trainer
(``hyperplex.common.train.train``) on all 8 channels, with the same width, depth, heads and patch:

- ``channelvit_hcs``: ChannelViT with Hierarchical Channel Sampling (the paper's recipe);
- ``channelvit``: the same ChannelViT without HCS;
- ``vit``: the plain ViT (``vit_test`` preset widened like the ChannelViTs): one patch embedding over
  the fixed 8-channel stack, evaluated with dropped channels set to 0 after the per-channel
  standardisation, i.e. to the training mean, the usual way to feed a fixed-channel model a partial panel;
- ``segformer`` (not run by default): ``hypersegformer_test`` with a pooled head, fed the same way.

Each model is evaluated on the test crops with every channel, then with ``k`` channels kept for
``k = 6, 4, 2, 1`` (``--subsets`` random channel subsets per ``k``, the same subsets for every model;
ChannelViT gets only the kept channels). The information ceiling of each subset is a per-cell
classifier (a small MLP) on the kept channels' mean intensity over each cell and over its nucleus,
trained on the training tissues' cells: what the kept markers tell about a cell. Prints the table as
Markdown and writes ``table.json``; finished runs and evaluations in ``--out`` are reused, so the
trainings can run as separate processes:

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/hcs_table.py --out /tmp/hcs/run            # all of it
    python benchmarks/hcs_table.py --out /tmp/hcs/run --models vit --train-only                # one run
    python benchmarks/hcs_table.py --out /tmp/hcs/run --eval-only                              # the table
    python benchmarks/hcs_table.py --out /tmp/smoke --size 384 --train-tissues 1 --steps 10 --eval-cells 100 --subsets 2
"""

from __future__ import annotations

import argparse
import json
import time
from math import comb
from pathlib import Path

import numpy as np
import torch

from hyperplex.bio.synth import tissue
from hyperplex.common.train import TileDataset, load_task_model, train, write_tiles

CROP = 32
_WIDE = {"embed_dim": 64, "depth": 4, "num_heads": 4}  # patch 8 and 32 px from the *_test presets
MODELS = {  # name: (preset, model_args, hcs)
    "channelvit_hcs": ("channelvit_test", _WIDE, True),
    "channelvit": ("channelvit_test", _WIDE, False),
    "vit": ("vit_test", _WIDE, None),
    "segformer": ("hypersegformer_test", {}, None),
}
DEFAULT_MODELS = ["channelvit_hcs", "channelvit", "vit"]
KEEP = (8, 6, 4, 2, 1)


def _per_cell_means(values: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """Mean of every channel of ``values`` (C, H, W) over each label 1..count of ``labels`` (H, W): (count, C)."""
    flat, lab = values.reshape(len(values), -1), labels.ravel()
    n = np.bincount(lab, minlength=count + 1)[1:]
    sums = np.stack([np.bincount(lab, weights=v, minlength=count + 1)[1:] for v in flat], axis=1)
    return sums / np.maximum(n, 1)[:, None]


def cell_crops(size: int, seed: int) -> dict:
    """Crops (N, C, 32, 32) centred on every cell away from the border, the cell type names, the type
    list, the channels, and per-cell features (N, 2C): each channel's mean over the cell and over its nucleus."""
    t = tissue(size=size, markers=8, seed=seed, he=False)
    count = len(t.cell_types)
    rows, cols = np.nonzero(t.cells)
    labels = t.cells[rows, cols]
    n = np.bincount(labels, minlength=count + 1)[1:]
    cy = np.bincount(labels, weights=rows, minlength=count + 1)[1:] / np.maximum(n, 1)
    cx = np.bincount(labels, weights=cols, minlength=count + 1)[1:] / np.maximum(n, 1)
    image = t.image.astype(np.float64)
    feats = np.concatenate([_per_cell_means(image, t.cells, count), _per_cell_means(image, t.nuclei, count)], 1)
    half, keep = CROP // 2, []
    for k in np.flatnonzero(n > 0):
        r, c = round(float(cy[k])), round(float(cx[k]))
        if half <= r <= size - half and half <= c <= size - half:
            keep.append((k, r, c))
    crops = np.stack([t.image[:, r - half : r + half, c - half : c + half] for _, r, c in keep])
    types = [str(x) for x in t.cell_types]
    names = np.array([types[k] for k, _, _ in keep])
    return {"crops": crops, "names": names, "channels": t.channels, "features": feats[[k for k, _, _ in keep]]}


def make_stores(out: Path, size: int, train_seeds: list[int], test_seed: int) -> tuple[Path, Path]:
    """Write the train and test tile stores (the same class list) and ``cells.npz`` (per-cell features and
    labels of both, same order as the stores); kept when they exist already."""
    if all((out / name).exists() for name in ("train.zarr", "test.zarr", "cells.npz")):
        return out / "train.zarr", out / "test.zarr"
    parts = [cell_crops(size, s) for s in train_seeds]
    test = cell_crops(size, test_seed)
    classes = sorted({name for p in [*parts, test] for name in p["names"]})
    train_y = np.array([classes.index(n) for p in parts for n in p["names"]])
    test_y = np.array([classes.index(n) for n in test["names"]])
    channels = parts[0]["channels"]
    a = write_tiles(out / "train.zarr", np.concatenate([p["crops"] for p in parts]), channels, label=train_y,
                    label_classes=classes)  # fmt: skip
    b = write_tiles(out / "test.zarr", test["crops"], channels, label=test_y, label_classes=classes)
    train_f = np.concatenate([p["features"] for p in parts])
    np.savez(out / "cells.npz", train_x=train_f, train_y=train_y, test_x=test["features"], test_y=test_y)
    return a, b


def train_models(out: Path, data: Path, args: argparse.Namespace) -> dict[str, float]:
    """Train the models ``args.models`` of :data:`MODELS` (a finished run folder is kept); wall seconds of each."""
    seconds = {}
    for name in args.models:
        preset, model_args, hcs = MODELS[name]
        if (out / name / "model.safetensors").is_file():
            continue
        start = time.perf_counter()
        train(model=preset, data=str(data), task="classify", out=str(out / name), model_args=model_args, hcs=hcs,
              max_steps=args.steps, batch_size=args.batch, lr=args.lr, warmup_steps=args.steps // 20,
              seed=args.seed, device=args.device, precision="fp32", quiet=True, log_every=50,
              checkpoint_every=500)  # fmt: skip
        seconds[name] = time.perf_counter() - start
        print(f"trained {name} in {seconds[name]:.0f} s", flush=True)
    return seconds


def test_tensors(test: Path, cells: int, train_store: Path) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Up to ``cells`` test crops (standardised with the training statistics), their labels, their indices."""
    ds = TileDataset(test, fields=("label",))
    ref = TileDataset(train_store)
    ds.mean, ds.std = ref.mean, ref.std
    idx = np.random.default_rng(0).permutation(len(ds))[:cells]
    samples = [ds[int(i)] for i in idx]
    return torch.stack([s["image"] for s in samples]), torch.stack([s["label"] for s in samples]), idx


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, names: list[str], keep) -> float:
    """Accuracy with only the channels ``keep``: a channel-adaptive model gets those channels only, a
    fixed-channel model the full stack with the dropped channels at 0 (the training mean)."""
    keep = list(keep)
    if model.model.channel_adaptive:
        xin, chans = x[:, keep], [names[i] for i in keep]
    else:
        xin, chans = torch.zeros_like(x), names
        xin[:, keep] = x[:, keep]
    preds = torch.cat([model(xin[i : i + 128], chans).argmax(1) for i in range(0, len(xin), 128)])
    return float((preds == y).float().mean())


def subsets(c: int, k: int, count: int, seed: int = 0) -> list[tuple[int, ...]]:
    """``count`` distinct random ``k``-subsets of ``range(c)`` (all of them when there are fewer)."""
    rng, out = np.random.default_rng(seed + k), set()
    while len(out) < min(count, comb(c, k)):
        out.add(tuple(sorted(rng.choice(c, k, replace=False).tolist())))
    return sorted(out)


def _features(f: np.ndarray, keep: tuple[int, ...], c: int) -> np.ndarray:
    """Log per-cell features (cell and nucleus means) of the kept channels."""
    return np.log1p(np.concatenate([f[:, list(keep)], f[:, [c + i for i in keep]]], axis=1))


def ceiling_accuracy(cells: dict, keep: tuple[int, ...], c: int, test_idx: np.ndarray, seed: int = 0) -> float:
    """Test accuracy of a per-cell MLP (64 hidden units, full-batch Adam) on the kept channels' cell and
    nucleus means, trained on the training cells: what the kept markers allow."""
    xtr, xte = _features(cells["train_x"], keep, c), _features(cells["test_x"][test_idx], keep, c)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    xtr, xte = (torch.tensor((v - mu) / sd, dtype=torch.float32) for v in (xtr, xte))
    ytr, yte = torch.as_tensor(cells["train_y"]), torch.as_tensor(cells["test_y"][test_idx])
    torch.manual_seed(seed)
    mlp = torch.nn.Sequential(
        torch.nn.Linear(xtr.shape[1], 64), torch.nn.GELU(), torch.nn.Linear(64, int(ytr.max()) + 1)
    )
    opt = torch.optim.Adam(mlp.parameters(), lr=1e-2, weight_decay=1e-4)
    for _ in range(400):
        loss = torch.nn.functional.cross_entropy(mlp(xtr), ytr)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float((mlp(xte).argmax(1) == yte).float().mean())


def _summary(accs: list[float], ceilings: list[float]) -> dict:
    ratio = [a / max(b, 1e-9) for a, b in zip(accs, ceilings)]
    return {"mean": float(np.mean(accs)), "min": float(np.min(accs)), "max": float(np.max(accs)),
            "of_ceiling": float(np.mean(ratio)), "subsets": accs}  # fmt: skip


def evaluate(out: Path, data: dict, models: list[str], count: int) -> dict:
    """Per model and number of kept channels: mean, spread and mean fraction of the ceiling of the accuracy
    over the subsets (``ceiling`` is the per-cell MLP; each model cached in ``<run>/hcs_eval.json``)."""
    c = len(data["names"])
    ceilings = {k: [ceiling_accuracy(data["cells"], s, c, data["idx"]) for s in subsets(c, k, count)] for k in KEEP}
    table: dict = {"ceiling": {k: _summary(v, v) for k, v in ceilings.items()}}
    for name in models:
        cache = out / name / "hcs_eval.json"
        if cache.is_file():
            accs = {int(k): v for k, v in json.loads(cache.read_text()).items()}
        else:
            model = load_task_model(out / name).eval()
            accs = {k: [accuracy(model, data["x"], data["y"], data["names"], s) for s in subsets(c, k, count)]
                    for k in KEEP}  # fmt: skip
            cache.write_text(json.dumps(accs))
        table[name] = {k: _summary(accs[k], ceilings[k]) for k in KEEP}
        print(name, {k: round(v["mean"], 3) for k, v in table[name].items()}, flush=True)
    return table


def markdown(table: dict, chance: float) -> str:
    """Two Markdown tables (rows: models; columns: channels kept): accuracy, and accuracy / ceiling."""
    head = "| model | " + " | ".join(f"{k} kept" for k in KEEP) + " |\n|---|" + "---|" * len(KEEP)
    acc, frac = [head], [head]
    for name, row in table.items():
        acc.append(f"| `{name}` | " + " | ".join(
            f"{row[k]['mean']:.3f} ({row[k]['min']:.2f}-{row[k]['max']:.2f})" for k in KEEP) + " |")  # fmt: skip
        if name != "ceiling":
            frac.append(f"| `{name}` | " + " | ".join(f"{row[k]['of_ceiling']:.2f}" for k in KEEP) + " |")
    return "\n".join(acc) + f"\n\nMajority-class accuracy: {chance:.3f}.\n\n" + "\n".join(frac)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", type=int, default=768, help="tissue side in pixels")
    parser.add_argument("--train-tissues", type=int, default=4, help="training tissues (seeds 1..n; test: 0)")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="training device (cpu, cuda)")
    parser.add_argument("--subsets", type=int, default=8, help="channel subsets per k (all 8 singles for k=1)")
    parser.add_argument("--eval-cells", type=int, default=2000)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=DEFAULT_MODELS,
                        help="train / tabulate only these (e.g. one per process)")  # fmt: skip
    parser.add_argument("--train-only", action="store_true", help="stop after training")
    parser.add_argument("--eval-only", action="store_true", help="only evaluate (and tabulate) finished runs")
    return parser


def main() -> None:
    args = _parser().parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    train_store, test_store = make_stores(args.out, args.size, list(range(1, args.train_tissues + 1)), 0)
    seconds = {} if args.eval_only else train_models(args.out, train_store, args)
    if args.train_only:
        return
    x, y, idx = test_tensors(test_store, args.eval_cells, train_store)
    cells = dict(np.load(args.out / "cells.npz"))
    data = {"x": x, "y": y, "idx": idx, "cells": cells, "names": list(TileDataset(test_store).channels.names)}
    table = evaluate(args.out, data, args.models, args.subsets)
    chance = float(np.bincount(y.numpy()).max() / len(y))
    per_step = {n: json.loads((args.out / n / "summary.json").read_text())["seconds_per_step"] for n in args.models}
    record = {"table": table, "chance": chance, "test_cells": len(y), "train_seconds": seconds,
              "seconds_per_step": per_step, "args": {k: str(v) for k, v in vars(args).items()}}  # fmt: skip
    (args.out / "table.json").write_text(json.dumps(record, indent=1))
    print(markdown(table, chance))


if __name__ == "__main__":
    main()
