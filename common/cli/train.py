"""``hyperplex train``: train any model family on a tile store (registered via ``hyperplex.commands``).

torch and the trainer are imported inside the command, so ``hyperplex --help`` stays fast. Under
``torchrun --nproc_per_node N -m hyperplex.common.train ...`` every process runs this command (DDP).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from hyperplex.common.cli.errors import click_errors

__all__ = ["train"]


def _pairs(values: tuple[str, ...], option: str) -> dict[str, Any]:
    """``key=value`` strings to a dict; values are parsed as JSON when they can be (numbers, lists, true)."""
    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected key=value, got {item!r}", param_hint=option)
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


_OPTIONS = [
    click.option("--model", "-m", help="Model preset (see `hyperplex models list`)."),
    click.option("--data", "-d", help="Tile store (Zarr; see hyperplex.common.train.write_tiles)."),
    click.option("--task", "-t", type=click.Choice(["classify", "segment", "regress", "dino", "mae"]),
                 help="Objective (default classify)."),
    click.option("--out", "-o", help="Run folder (default run/)."),
    click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
                 help="YAML or JSON file of options; command-line options win."),
    click.option("--epochs", type=click.IntRange(min=1), help="Passes over the tiles."),
    click.option("--max-steps", type=click.IntRange(min=1), help="Total optimiser steps (instead of epochs)."),
    click.option("--stop-after", type=click.IntRange(min=1), help="Stop (checkpointed) after N steps of this run."),
    click.option("--batch-size", "-b", type=click.IntRange(min=1), help="Tiles per step and process."),
    click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Peak learning rate."),
    click.option("--min-lr", type=click.FloatRange(min=0), help="Final learning rate (cosine)."),
    click.option("--weight-decay", type=click.FloatRange(min=0), help="AdamW weight decay."),
    click.option("--warmup-steps", type=click.IntRange(min=0), help="Linear warm-up steps."),
    click.option("--grad-clip", type=click.FloatRange(min=0), help="Gradient-norm clip (0: off)."),
    click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
                 help="Autocast (auto: bf16/fp16 on a GPU, fp32 on CPU)."),
    click.option("--device", help="auto, cpu, cuda or cuda:N."),
    click.option("--seed", type=click.IntRange(min=0), help="Seed (same seed, same weights)."),
    click.option("--hcs/--no-hcs", default=None, help="Hierarchical channel sampling per batch."),
    click.option("--val-fraction", type=click.FloatRange(0, 1, max_open=True), help="Validation fraction of tiles."),
    click.option("--num-workers", type=click.IntRange(0, 64), help="DataLoader workers."),
    click.option("--log-every", type=click.IntRange(min=1), help="Steps between metric rows."),
    click.option("--checkpoint-every", type=click.IntRange(min=0), help="Steps between checkpoints (0: per epoch)."),
    click.option("--resume", is_flag=True, default=None, help="Continue from OUT/checkpoint."),
    click.option("--init", help="Start from these safetensors weights (e.g. a pretrained encoder)."),
    click.option("--tensorboard/--no-tensorboard", default=None, help="TensorBoard events (default: if installed)."),
    click.option("--set", "model_args", multiple=True, help="Model override key=value (repeatable): --set depth=4."),
    click.option("--dino", "dino", multiple=True, help="DINO option key=value (repeatable): --dino out_dim=1024."),
    click.option("--quiet", "-q", is_flag=True, default=None, help="No progress bars, print only results."),
    click.option("--loss", type=click.Choice(["ce", "focal", "dice_ce"]), help="Segmentation loss (default ce)."),
]  # fmt: skip


def _with_options(fn: Any) -> Any:
    for option in reversed(_OPTIONS):
        fn = option(fn)
    return fn


@click.command("train")
@_with_options
def train(config_file: Path | None, model_args: tuple[str, ...], dino: tuple[str, ...], **options: Any) -> None:
    """Train a model on a tile store: supervised, DINO or masked-autoencoder pretraining.

    \b
    Examples:
      hyperplex train --model chadavit_test --data tiles.zarr --task classify --epochs 1 --out run/
      hyperplex train --config run.yaml --max-steps 1000 --resume
      torchrun --nproc_per_node 2 -m hyperplex.common.train -m lessvit_hypermae_test -d s.zarr -t mae
    """  # noqa: D301  (click's \b marker, not an escape)
    from hyperplex.common.train import load_config
    from hyperplex.common.train import train as run_training

    with click_errors():
        extra = {"model_args": _pairs(model_args, "--set") or None, "dino": _pairs(dino, "--dino") or None}
        cfg = load_config(config_file, **options, **extra)
        result = run_training(cfg)
    if len(set(result.digests)) > 1:
        raise click.ClickException(f"Processes ended with different weights (DDP out of sync): {result.digests}.")
    shown = ", ".join(f"{k} {v:.4g}" for k, v in result.metrics.items())
    if os.environ.get("RANK", "0") == "0":
        click.echo(f"{cfg.model} {cfg.task}: step {result.step}, {result.seconds_per_step:.3f} s/step; {shown}")
        click.echo(f"run folder: {result.out} (model.safetensors, metrics.csv, checkpoint/)")
