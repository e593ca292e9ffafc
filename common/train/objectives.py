"""Training objectives: a module that turns a batch into ``{"loss", metric...}`` and exports its result.

Every objective is an ``nn.Module`` (so DDP can wrap it) with
``forward(x, channels, channel_mask, batch) -> dict[str, Tensor]`` (``loss`` first), ``after_step(progress)``
(called after each optimiser step with the fraction of the run done) and ``export(folder)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hyperplex.common.atomic import atomic_path
from hyperplex.common.errors import ModelCompatibilityError
from hyperplex.common.train.heads import TaskModel

__all__ = ["MaskedAutoencoding", "Supervised", "save_head"]

#: Dataset fields each supervised task reads.
FIELDS = {"classify": ("label",), "segment": ("mask",), "regress": ("target",), "dino": (), "mae": ()}


def save_head(task_model: TaskModel, folder: Path) -> None:
    """Write the task head (if any) as ``head.safetensors`` with its spec in the metadata."""
    from safetensors.torch import save_file

    if task_model.head is None:
        return
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in task_model.head.state_dict().items()}
    with atomic_path(folder / "head.safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"head_spec": json.dumps(task_model.head_spec)})


class Supervised(nn.Module):
    """Cross-entropy (``classify``, ``segment``) or mean squared error (``regress``) on a :class:`TaskModel`.

    Metrics: ``accuracy`` (tiles), ``pixel_accuracy`` (pixels other than ``ignore_index``), ``mae``
    (mean absolute error of the target).

    Args:
        task_model: The model with its head.
        task: ``classify``, ``segment`` or ``regress``.
        ignore_index: Mask value left out of the segmentation loss and metric (None: none).
    """

    def __init__(self, task_model: TaskModel, task: str, ignore_index: int | None = None):
        super().__init__()
        self.net, self.task = task_model, task
        self.ignore_index = -100 if ignore_index is None else int(ignore_index)

    def forward(
        self, x: torch.Tensor, channels: Any, channel_mask: torch.Tensor | None, batch: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Loss and metrics of one batch."""
        pred = self.net(x, channels, channel_mask).float()
        if self.task == "classify":
            label = batch["label"]
            return {"loss": F.cross_entropy(pred, label), "accuracy": (pred.argmax(1) == label).float().mean()}
        if self.task == "segment":
            mask = batch["mask"]
            valid = mask != self.ignore_index
            hits = ((pred.argmax(1) == mask) & valid).sum() / valid.sum().clamp_min(1)
            return {"loss": F.cross_entropy(pred, mask, ignore_index=self.ignore_index), "pixel_accuracy": hits}
        target = batch["target"]
        return {"loss": F.mse_loss(pred, target), "mae": (pred - target).abs().mean()}

    def after_step(self, progress: float) -> None:
        """Nothing to do after a step."""

    def export(self, folder: Path) -> None:
        """``model.safetensors`` (``load_model`` reads it) and ``head.safetensors`` when there is a head."""
        self.net.model.save(folder / "model.safetensors")
        save_head(self.net, folder)


class MaskedAutoencoding(nn.Module):
    """Self-supervised masked autoencoding with a model whose forward returns ``{"loss", ...}`` (Hyper-MAE).

    Metrics: every scalar the model returns besides ``loss`` (Hyper-MAE: ``pos_loss``, ``channel_loss``).
    """

    def __init__(self, task_model: TaskModel):
        super().__init__()
        self.net = task_model

    def forward(
        self, x: torch.Tensor, channels: Any, channel_mask: torch.Tensor | None, batch: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """The model's loss and its other scalar outputs.

        Raises:
            ModelCompatibilityError: If the model does not return a dict with ``loss``.
        """
        out = self.net(x, channels, channel_mask)
        if not isinstance(out, dict) or "loss" not in out:
            raise ModelCompatibilityError(
                f"Task 'mae' needs a model whose forward returns a dict with 'loss' (e.g. lessvit_hypermae_*); "
                f"{type(self.net.model).__name__} returns {type(out).__name__}."
            )
        scalars = {k: v.float() for k, v in out.items() if k != "loss" and isinstance(v, torch.Tensor) and v.ndim == 0}
        return {"loss": out["loss"].float(), **scalars}

    def after_step(self, progress: float) -> None:
        """Nothing to do after a step."""

    def export(self, folder: Path) -> None:
        """``model.safetensors`` (the whole autoencoder) and ``encoder.safetensors`` when it has an ``encoder``."""
        model = self.net.model
        model.save(folder / "model.safetensors")
        encoder = getattr(model, "encoder", None)
        if callable(getattr(encoder, "save", None)):
            encoder.trained_channels = model.trained_channels
            encoder.save(folder / "encoder.safetensors")
