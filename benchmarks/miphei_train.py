"""Train the shipped ``miphei_small`` weights on synthetic paired H&E / multiplex slides (the shared trainer).

Steps: synthetic slides (seeds 1..N; the evaluation uses seeds from 1000 on) -> a tile store of H&E
tiles with their 16-marker targets (:func:`hyperplex.bio.mif_pairs.write_pair_store`) -> ``train(task=
"regress")`` on ``miphei_small`` with the store's RGB statistics as the model's input normalisation ->
the exported model, re-saved as the preset's weights file when ``--ship`` is given.

The same command with more ``--max-steps`` (or on a GPU with ``--device cuda``) trains longer; an
interrupted run continues from its checkpoint (the trainer's ``resume``).

Usage:
    OMP_NUM_THREADS=1 python benchmarks/miphei_train.py --out /tmp/miphei/train --slides 12 --max-steps 240 --ship
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

#: Overrides of the preset for the shipped model (none: the preset is the shipped architecture).
MODEL_ARGS: dict = {}


def main() -> None:
    """Build the store (once), train, and optionally ship the weights."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="Work folder (store, run).")
    parser.add_argument("--slides", type=int, default=12, help="Training slides (seeds 1..N).")
    parser.add_argument("--size", type=int, default=768, help="Slide edge, pixels.")
    parser.add_argument("--max-steps", type=int, default=240)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--stop-after", type=int, default=None, help="Stop (checkpoint, export) after N steps.")
    parser.add_argument("--ship", action="store_true", help="Write common/models/weights/miphei_small_synth.*.")
    args = parser.parse_args()

    from hyperplex.bio.mif_pairs import write_pair_store
    from hyperplex.common.train import TileStore, train

    store_path = args.out / "pairs.zarr"
    if not store_path.exists():
        t0 = time.time()
        write_pair_store(store_path, list(range(1, args.slides + 1)), size=args.size)
        print(f"tile store {store_path}: {time.time() - t0:.0f} s", flush=True)
    store = TileStore.open(store_path)
    norm = {k: [v / 255.0 for v in store.attrs[f"image_{k}"]] for k in ("mean", "std")}
    model_args = {**MODEL_ARGS, "input_mean": norm["mean"], "input_std": norm["std"]}
    t0 = time.time()
    result = train(
        model="miphei_small", data=str(store_path), task="regress", out=str(args.out / "run"),
        model_args=model_args, max_steps=args.max_steps, batch_size=args.batch_size, lr=args.lr,
        min_lr=args.lr / 20, warmup_steps=min(30, args.max_steps // 10), weight_decay=0.01, device=args.device,
        checkpoint_every=10, stop_after=args.stop_after, resume=True, quiet=True, log_every=10, val_fraction=0.05,
        seed=0,
    )  # fmt: skip
    minutes = (time.time() - t0) / 60
    summary = {"steps": result.step, "minutes_this_run": round(minutes, 1), "metrics": result.metrics}
    print(json.dumps(summary), flush=True)
    if args.ship:
        _ship(args.out / "run" / "model.safetensors", store.attrs["meta"], summary)


def _ship(model_file: Path, meta: dict, summary: dict) -> None:
    """Re-save the exported model as the preset's weights and write its model card."""
    from hyperplex.common.models import WEIGHTS_DIR, load_model

    model = load_model(model_file)
    model.preset = "miphei_small"
    target = WEIGHTS_DIR / "miphei_small_synth.safetensors"
    model.save(target)
    params = sum(p.numel() for p in model.parameters())
    summary = {**summary, "metrics": _last_metrics(model_file.parent / "metrics.csv")}
    (WEIGHTS_DIR / "miphei_small_synth.md").write_text(CARD.format(
        steps=summary["steps"], metrics=json.dumps(summary["metrics"]), seeds=meta["seeds"], size=meta["size"],
        tile=meta["tile"], stride=meta["stride"], markers=", ".join(model.output_channels.names), params=params,
        mb=target.stat().st_size / 1e6, scale=[round(v) for v in meta["scale"]], command=COMMAND,
    ))  # fmt: skip
    (Path(__file__).resolve().parent / "miphei_train.json").write_text(
        json.dumps({"store_meta": meta, **summary}, indent=1)
    )


def _last_metrics(path: Path) -> dict[str, float]:
    """The last logged value of each ``split/metric`` in the run's metrics.csv."""
    import csv

    with open(path) as fh:
        return {f"{row['split']}_{row['metric']}": round(float(row["value"]), 4) for row in csv.DictReader(fh)}


COMMAND = "OMP_NUM_THREADS=1 python benchmarks/miphei_train.py --out /tmp/miphei/train --max-steps 240 --ship"
CARD = """# miphei_small_synth: H&E -> 16 multiplex markers, trained on synthetic tissue

Preset `miphei_small` (MIPHEI: ViT width 128, 4 blocks, patch 14, 4 registers, fully trained; detail-capture
decoder with one tanh head per marker), {params} parameters, {mb:.1f} MB. Default model of
`hyperplex bio predict-mif`.

Command: `{command}`

Data: `hyperplex.bio.synth.tissue` slides, seeds {seeds}, {size} px at 0.5 um, cut into {tile} px tiles every
{stride} px (5% held out for validation); the H&E rendering as input (uint8 RGB, normalised with the
store's mean/std, saved as the model's `input_mean`/`input_std`), the 16-marker fluorescence as the
target: `1.8 * clip((counts - background) / scale, 0, 1) - 0.9` with scale (counts at the 99.5th
percentile) {scale}. Markers: {markers}.

Training: the shared trainer (`hyperplex.common.train.train`, task `regress`, MSE), AdamW lr 2e-3 cosine to
1e-4, batch 4, {steps} steps (about 42 min on 2 CPU cores shared with other jobs, niced; the same command
with more `--max-steps`, or `--device cuda`, trains longer). Last logged metrics (tanh scale): {metrics}.

Evaluation: `benchmarks/miphei_eval.py` (per-cell Pearson r and F1 on held-out seeds 1000+), table in
the README section "H&E to multiplex on whole slides". These are synthetic slides: the weights know
the synthetic tissue's look, not real H&E; do not use them on real slides.
"""


if __name__ == "__main__":
    main()
