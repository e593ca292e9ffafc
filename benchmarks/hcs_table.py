"""Hierarchical Channel Sampling reproduced: accuracy vs channels kept at test time (docs/hcs.md).

Task: the cell type (7 classes) of the cell at the centre of a 32 x 32 crop of synthetic multiplex
tissue (``hyperplex.bio.synth.tissue``, 8 markers, 0.5 µm pixels). Train tissues and a held-out test
tissue are different seeds. Three models are trained with the shared trainer
(``hyperplex.common.train.train``) on all 8 channels:

- ``channelvit_hcs``: ChannelViT with Hierarchical Channel Sampling (the paper's recipe);
- ``channelvit``: the same ChannelViT without HCS;
- ``fixed``: a fixed-channel transformer (the ``hypersegformer_test`` preset with a pooled head; its
  first layer takes exactly 8 channels), evaluated with dropped channels set to 0 after the per-channel
  standardisation, i.e. to the training mean, the usual way to feed a fixed-channel model a partial panel.

Each model is evaluated on the test crops with every channel, then with ``k`` channels kept for
``k = 6, 4, 2, 1`` (``--subsets`` random channel subsets per ``k``, the same subsets for every model;
ChannelViT gets only the kept channels). Prints the table as Markdown and writes ``table.json``;
finished runs and evaluations in ``--out`` are reused, so the three trainings can run as three processes:

    OMP_NUM_THREADS=1 nice -n 15 python benchmarks/hcs_table.py --out /tmp/hcs            # all of it
    python benchmarks/hcs_table.py --out /tmp/hcs --models fixed --train-only             # one run
    python benchmarks/hcs_table.py --out /tmp/hcs --eval-only                             # the table
    python benchmarks/hcs_table.py --out /tmp/smoke --size 384 --steps 10 --eval-cells 100 --subsets 2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from hyperplex.bio.synth import tissue
from hyperplex.common.train import TileDataset, load_task_model, train, write_tiles

CROP = 32
MODELS = {  # name: (preset, model_args, hcs)
    "channelvit_hcs": ("channelvit_test", {"embed_dim": 64, "depth": 4, "num_heads": 4}, True),
    "channelvit": ("channelvit_test", {"embed_dim": 64, "depth": 4, "num_heads": 4}, False),
    "fixed": ("hypersegformer_test", {}, None),
}
KEEP = (8, 6, 4, 2, 1)


def cell_crops(size: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str], object]:
    """Crops (N, C, 32, 32) centred on every cell away from the border, their type index, the type names."""
    t = tissue(size=size, markers=8, seed=seed, he=False)
    ids = np.arange(1, len(t.cell_types) + 1)
    rows, cols = np.nonzero(t.cells)
    labels = t.cells[rows, cols]
    counts = np.bincount(labels, minlength=len(ids) + 1)[1:]
    cy = np.bincount(labels, weights=rows, minlength=len(ids) + 1)[1:] / np.maximum(counts, 1)
    cx = np.bincount(labels, weights=cols, minlength=len(ids) + 1)[1:] / np.maximum(counts, 1)
    half, keep = CROP // 2, []
    for k in ids[counts > 0] - 1:
        r, c = round(float(cy[k])), round(float(cx[k]))
        if half <= r <= size - half and half <= c <= size - half:
            keep.append((k, r, c))
    crops = np.stack([t.image[:, r - half : r + half, c - half : c + half] for _, r, c in keep])
    types = [str(x) for x in t.cell_types]
    return crops, np.array([types[k] for k, _, _ in keep]), types, t.channels


def make_stores(out: Path, size: int, train_seeds: list[int], test_seed: int) -> tuple[Path, Path]:
    """Write the train and test tile stores (the same class list); kept when both exist already."""
    if (out / "train.zarr").is_dir() and (out / "test.zarr").is_dir():
        return out / "train.zarr", out / "test.zarr"
    parts = [cell_crops(size, s) for s in train_seeds]
    test = cell_crops(size, test_seed)
    classes = sorted({name for p in [*parts, test] for name in p[1]})
    train_x = np.concatenate([p[0] for p in parts])
    train_y = np.concatenate([[classes.index(n) for n in p[1]] for p in parts])
    channels = parts[0][3]
    a = write_tiles(out / "train.zarr", train_x, channels, label=train_y, label_classes=classes)
    b = write_tiles(out / "test.zarr", test[0], channels, label=np.array([classes.index(n) for n in test[1]]),
                    label_classes=classes)  # fmt: skip
    return a, b


def train_models(
    out: Path, data: Path, steps: int, batch: int, seed: int, names: list[str], device: str = "cpu"
) -> dict[str, float]:
    """Train the models ``names`` of :data:`MODELS` (a finished run folder is kept); wall seconds of each run."""
    seconds = {}
    for name in names:
        preset, args, hcs = MODELS[name]
        if (out / name / "model.safetensors").is_file():
            continue
        start = time.perf_counter()
        train(model=preset, data=str(data), task="classify", out=str(out / name), model_args=args, hcs=hcs,
              max_steps=steps, batch_size=batch, lr=1e-3, warmup_steps=steps // 20, seed=seed, device=device,
              precision="fp32", quiet=True, log_every=50)  # fmt: skip
        seconds[name] = time.perf_counter() - start
        print(f"trained {name} in {seconds[name]:.0f} s", flush=True)
    return seconds


def test_tensors(test: Path, cells: int, train_store: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Up to ``cells`` test crops (standardised with the training statistics) and their labels."""
    ds = TileDataset(test, fields=("label",))
    ref = TileDataset(train_store)
    ds.mean, ds.std = ref.mean, ref.std
    idx = np.random.default_rng(0).permutation(len(ds))[:cells]
    samples = [ds[int(i)] for i in idx]
    return torch.stack([s["image"] for s in samples]), torch.stack([s["label"] for s in samples])


@torch.no_grad()
def accuracy(name: str, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, names: list[str], keep) -> float:
    """Accuracy with only the channels ``keep`` (dropped ones removed, or zeroed for the fixed model)."""
    keep = list(keep)
    if name == "fixed":
        xin = torch.zeros_like(x)
        xin[:, keep] = x[:, keep]
        chans = names
    else:
        xin, chans = x[:, keep], [names[i] for i in keep]
    preds = torch.cat([model(xin[i : i + 128], chans).argmax(1) for i in range(0, len(xin), 128)])
    return float((preds == y).float().mean())


def subsets(c: int, k: int, count: int, seed: int = 0) -> list[tuple[int, ...]]:
    """``count`` distinct random ``k``-subsets of ``range(c)`` (all of them when there are fewer)."""
    rng, out = np.random.default_rng(seed + k), set()
    from math import comb

    while len(out) < min(count, comb(c, k)):
        out.add(tuple(sorted(rng.choice(c, k, replace=False).tolist())))
    return sorted(out)


def evaluate(out: Path, x: torch.Tensor, y: torch.Tensor, names: list[str], models: list[str], count: int) -> dict:
    """Mean and spread of the accuracy per model and number of kept channels (cached in ``<run>/hcs_eval.json``)."""
    table: dict = {}
    for name in models:
        cache = out / name / "hcs_eval.json"
        if cache.is_file():
            table[name] = {int(k): v for k, v in json.loads(cache.read_text()).items()}
            continue
        model = load_task_model(out / name).eval()
        table[name] = {}
        for k in KEEP:
            accs = [accuracy(name, model, x, y, names, s) for s in subsets(len(names), k, count)]
            table[name][k] = {"mean": float(np.mean(accs)), "min": float(np.min(accs)), "max": float(np.max(accs))}
        cache.write_text(json.dumps(table[name]))
        print(name, {k: round(v["mean"], 3) for k, v in table[name].items()}, flush=True)
    return table


def markdown(table: dict, chance: float) -> str:
    """The table as Markdown: rows are models, columns the number of channels kept."""
    lines = ["| model | " + " | ".join(f"{k} kept" for k in KEEP) + " |", "|---|" + "---|" * len(KEEP)]
    for name, row in table.items():
        cells = [f"{row[k]['mean']:.3f} ({row[k]['min']:.2f}-{row[k]['max']:.2f})" for k in KEEP]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + f"\n\nMajority-class accuracy: {chance:.3f}."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", type=int, default=768, help="tissue side in pixels")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="training device (cpu, cuda)")
    parser.add_argument("--subsets", type=int, default=5)
    parser.add_argument("--eval-cells", type=int, default=500)
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS),
                        help="train only these (e.g. one per process); the table needs all three runs")  # fmt: skip
    parser.add_argument("--train-only", action="store_true", help="stop after training")
    parser.add_argument("--eval-only", action="store_true", help="only evaluate (and tabulate) finished runs")
    args = parser.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    train_store, test_store = make_stores(args.out, args.size, [1, 2], 3)
    seconds = {}
    if not args.eval_only:
        seconds = train_models(args.out, train_store, args.steps, args.batch, args.seed, args.models, args.device)
    if args.train_only:
        return
    x, y = test_tensors(test_store, args.eval_cells, train_store)
    names = list(TileDataset(test_store).channels.names)
    table = evaluate(args.out, x, y, names, args.models, args.subsets)
    chance = float(np.bincount(y.numpy()).max() / len(y))
    per_step = {n: json.loads((args.out / n / "summary.json").read_text())["seconds_per_step"] for n in args.models}
    record = {"table": table, "chance": chance, "train_seconds": seconds, "seconds_per_step": per_step}
    record["args"] = {k: str(v) for k, v in vars(args).items()}
    (args.out / "table.json").write_text(json.dumps(record, indent=1))
    print(markdown(table, chance))


if __name__ == "__main__":
    main()
