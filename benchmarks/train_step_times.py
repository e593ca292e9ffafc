"""Seconds per training step of hyperplex.common.train for every family and objective.

Writes two tile stores (synthetic tissue: 8 markers with cell-type labels and masks; a random
12-band spectral store with wavelengths, labels, masks and a 4-channel target), trains each
(preset, task) pair for ``--steps`` steps and prints the mean time of a step (the first step, which
includes one-off set-up, is in the mean).

    python benchmarks/train_step_times.py --steps 10 --tile 64 --batch 8
    python benchmarks/train_step_times.py --runs chadavit_small_patch16:dino --tile 224 --steps 20  # on a GPU
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from hyperplex.bio.synth import CELL_TYPES, tissue
from hyperplex.common.train import object_class_map, scene_tiles, train, write_tiles

RUNS = [
    "chadavit_test:classify", "chadavit_test:dino", "channelvit_test:classify", "channelvit_test:segment",
    "lessvit_test:regress", "lessvit_hypermae_test:mae", "hypersegformer_test:segment",
    "hyperefficientvit_test:segment", "miphei_test:regress",
]  # fmt: skip
SPECTRAL = ("lessvit", "hypersegformer", "hyperefficientvit", "miphei")


def marker_store(folder: Path, tile: int, tiles: int) -> Path:
    side = tile * int(np.ceil(np.sqrt(tiles)))
    t = tissue(size=side, markers=8, seed=0, he=False)
    classes = ["background", *CELL_TYPES]
    cut = scene_tiles(t.image, tile, class_map=object_class_map(t.cells, t.cell_types, classes))
    return write_tiles(folder / "markers.zarr", cut["image"], t.channels, label=cut["label"], mask=cut["mask"],
                       label_classes=classes, mask_classes=classes)  # fmt: skip


def spectral_store(folder: Path, tile: int, tiles: int) -> Path:
    rng = np.random.default_rng(0)
    image = rng.normal(size=(tiles, 12, tile, tile)).astype(np.float32)
    mask = (image[:, 0] > image[:, 1]).astype(np.uint8)
    return write_tiles(folder / "spectral.zarr", image, list(np.linspace(420.0, 2400.0, 12)),
                       label=mask.mean(axis=(1, 2)).round().astype(int), mask=mask, label_classes=["a", "b"],
                       mask_classes=["a", "b"], target=np.tanh(image[:, :4]),
                       target_channels=["Hoechst", "CD3e", "Pan-CK", "SMA"])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--tile", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--runs", nargs="*", default=RUNS, help="preset:task pairs")
    parser.add_argument("--json", type=Path, help="also write the timings here")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="hyperplex-train-bench-"))
    tiles = args.batch * 2
    stores = {"markers": marker_store(folder, args.tile, tiles), "spectral": spectral_store(folder, args.tile, tiles)}
    rows = []
    for run in args.runs:
        preset, task = run.split(":")
        data = stores["spectral" if preset.startswith(SPECTRAL) else "markers"]
        began = time.perf_counter()
        result = train(model=preset, data=str(data), task=task, out=str(folder / run.replace(":", "_")),
                       max_steps=args.steps, batch_size=args.batch, device=args.device, quiet=True,
                       log_every=args.steps, dino={"out_dim": 1024, "hidden_dim": 512, "local_crops": 2})  # fmt: skip
        rows.append({"run": run, "s_per_step": result.seconds_per_step, "total_s": time.perf_counter() - began,
                     "loss": result.metrics["loss"]})  # fmt: skip
        print(f"{run:<34} {result.seconds_per_step:8.3f} s/step  total {rows[-1]['total_s']:6.1f} s  "
              f"loss {result.metrics['loss']:.4f}", flush=True)  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
