"""Training configuration: one dataclass, filled from keywords and/or a YAML or JSON file."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyperplex.common.errors import DataNotFoundError, FileFormatError, InvalidParameterError

__all__ = ["TASKS", "TrainConfig", "load_config"]

#: Training objectives: supervised ``classify`` (tile label), ``segment`` (per-pixel mask), ``regress``
#: (per-pixel target); self-supervised ``dino`` (any backbone with a CLS embedding; ChAda-ViT's recipe)
#: and ``mae`` (models whose forward returns a loss dict, e.g. Hyper-MAE for LESS ViT).
TASKS = ("classify", "segment", "regress", "dino", "mae")
_PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class TrainConfig:
    """Everything a training run needs; saved as ``config.json`` in the run folder.

    Attributes:
        model: Registered preset name (``hyperplex models list``).
        data: Tile store (see :mod:`hyperplex.common.train.store`).
        task: One of :data:`TASKS`.
        out: Run folder: checkpoint, metrics, exported model.
        model_args: Overrides passed to ``create_model`` (win over the values fitted to the data).
        epochs: Passes over the training tiles (the schedule's length unless ``max_steps`` is set).
        max_steps: Total optimiser steps of the run (overrides ``epochs`` for the schedule).
        stop_after: Stop (with a checkpoint) after this many steps of this invocation; resume later.
        batch_size: Tiles per step and process (the global batch is ``batch_size * world_size``).
        lr: Peak learning rate (AdamW).
        min_lr: Final learning rate of the cosine decay.
        weight_decay: AdamW weight decay (not applied to biases, norms, tokens and embeddings).
        warmup_steps: Linear warm-up steps.
        grad_clip: Clip the global gradient norm (0: off).
        precision: ``auto`` (bf16 on a GPU that has it, else fp16; fp32 on CPU), ``fp32``, ``bf16``, ``fp16``.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        seed: Seed of weights, data order and augmentation: the same seed gives the same weights.
        hcs: Hierarchical channel sampling per batch (None: the model's own default; ChannelViT samples
            inside the model, other channel-adaptive models get it from the trainer).
        val_fraction: Fraction of the tiles held out for validation (every ``round(1/val_fraction)``-th tile).
        num_workers: DataLoader worker processes.
        log_every: Steps between metric rows.
        checkpoint_every: Steps between checkpoints (0: at the end of each epoch and of the run only).
        resume: Continue from the checkpoint in ``out`` if there is one.
        init: Optional safetensors weights to start the model from (e.g. a pretrained encoder).
        tensorboard: Write TensorBoard events too (None: when the package is installed).
        quiet: No progress bars.
        dino: DINO options (:class:`~hyperplex.common.train.dino.DinoOptions` fields).
        loss: Segmentation loss: ``ce`` (cross-entropy), ``focal`` or ``dice_ce`` (rare positives); see
            :data:`~hyperplex.common.train.objectives.SEGMENT_LOSSES`.
    """

    model: str
    data: str
    task: str = "classify"
    out: str = "run"
    model_args: dict[str, Any] = field(default_factory=dict)
    epochs: int = 1
    max_steps: int | None = None
    stop_after: int | None = None
    batch_size: int = 8
    lr: float = 1e-3
    min_lr: float = 1e-5
    weight_decay: float = 0.05
    warmup_steps: int = 0
    grad_clip: float = 1.0
    precision: str = "auto"
    device: str = "auto"
    seed: int = 0
    hcs: bool | None = None
    val_fraction: float = 0.0
    num_workers: int = 0
    log_every: int = 10
    checkpoint_every: int = 0
    resume: bool = False
    init: str | None = None
    tensorboard: bool | None = None
    quiet: bool = False
    dino: dict[str, Any] = field(default_factory=dict)
    loss: str = "ce"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check the values.

        Raises:
            InvalidParameterError: Naming the first bad option and what it accepts.
        """
        if self.task not in TASKS:
            raise InvalidParameterError(f"`task` must be one of {list(TASKS)}; got {self.task!r}.")
        if self.precision not in _PRECISIONS:
            raise InvalidParameterError(f"`precision` must be one of {list(_PRECISIONS)}; got {self.precision!r}.")
        positive = {"epochs": self.epochs, "batch_size": self.batch_size, "log_every": self.log_every}
        positive |= {"max_steps": self.max_steps or 1, "stop_after": self.stop_after or 1}
        bad = [k for k, v in positive.items() if int(v) < 1]
        if bad:
            raise InvalidParameterError(f"`{bad[0]}` must be a positive integer; got {positive[bad[0]]}.")
        if not 0.0 <= self.val_fraction < 1.0:
            raise InvalidParameterError(f"`val_fraction` must be in [0, 1); got {self.val_fraction}.")
        if self.lr <= 0 or self.min_lr < 0 or self.warmup_steps < 0 or self.grad_clip < 0:
            raise InvalidParameterError("`lr` must be > 0 and `min_lr`, `warmup_steps`, `grad_clip` >= 0.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (round-trips through ``TrainConfig(**d)``)."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataNotFoundError(f"Config file {path} does not exist.")
    text = path.read_text()
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        else:
            data = json.loads(text)
    except Exception as err:  # yaml and json raise their own error types
        raise FileFormatError(f"{path}: not valid {path.suffix.lstrip('.').upper() or 'JSON'} ({err}).") from err
    if not isinstance(data, dict):
        raise FileFormatError(f"{path}: the config must be a mapping of option names to values.")
    return data


def load_config(path: str | os.PathLike[str] | None = None, **options: Any) -> TrainConfig:
    """Build a :class:`TrainConfig` from a YAML/JSON file, with keyword ``options`` taking precedence.

    Options whose value is None are ignored (unset CLI options), so the file's values stay.

    Raises:
        DataNotFoundError: If the file does not exist.
        FileFormatError: If it cannot be parsed.
        InvalidParameterError: On unknown option names or bad values.
    """
    data = _read_file(Path(path)) if path is not None else {}
    data.update({k: v for k, v in options.items() if v is not None})
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidParameterError(f"Unknown training options {unknown}; known: {sorted(known)}.")
    missing = [k for k in ("model", "data") if k not in data]
    if missing:
        raise InvalidParameterError(f"Training needs `{missing[0]}` (in the config file or as an option).")
    return TrainConfig(**data)
