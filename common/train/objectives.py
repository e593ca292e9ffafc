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
from hyperplex.common.errors import InvalidParameterError, ModelCompatibilityError
from hyperplex.common.train.heads import TaskModel

__all__ = ["SEGMENT_LOSSES", "MaskedAutoencoding", "Supervised", "save_head", "segment_loss"]

#: Dataset fields each supervised task reads.
FIELDS = {"classify": ("label",), "segment": ("mask",), "regress": ("target",), "dino": (), "mae": ()}
#: Losses of the ``segment`` task: cross-entropy; focal (Lin et al. 2017, gamma 2) for rare positives;
#: cross-entropy plus soft Dice of the classes other than 0 (the usual choice for small objects).
SEGMENT_LOSSES = ("ce", "focal", "dice_ce")
_FOCAL_GAMMA = 2.0
_DICE_EPS = 1.0


def _soft_dice(logits: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """1 - soft Dice of the classes 1..K-1 over the batch (class 0 is the background), valid pixels only."""
    prob = logits.softmax(1)[:, 1:]
    onehot = F.one_hot(torch.where(valid, mask, 0), logits.shape[1]).movedim(-1, 1)[:, 1:].to(prob)
    keep = valid[:, None].to(prob)
    inter = (prob * onehot * keep).sum(dim=(0, 2, 3))
    total = ((prob + onehot) * keep).sum(dim=(0, 2, 3))
    return (1 - (2 * inter + _DICE_EPS) / (total + _DICE_EPS)).mean()


def segment_loss(logits: torch.Tensor, mask: torch.Tensor, loss: str = "ce", ignore_index: int = -100) -> torch.Tensor:
    """Per-pixel loss of (B, K, H, W) logits against a (B, H, W) class mask.

    Args:
        logits: Class logits.
        mask: Class indices; ``ignore_index`` pixels are left out.
        loss: One of :data:`SEGMENT_LOSSES`.
        ignore_index: Mask value to ignore.

    Raises:
        InvalidParameterError: For an unknown loss.
    """
    if loss not in SEGMENT_LOSSES:
        raise InvalidParameterError(f"`loss` must be one of {list(SEGMENT_LOSSES)}; got {loss!r}.")
    valid = mask != ignore_index
    if loss == "focal":
        ce = F.cross_entropy(logits, mask, ignore_index=ignore_index, reduction="none")
        focal = (1 - torch.exp(-ce)) ** _FOCAL_GAMMA * ce
        return (focal * valid).sum() / valid.sum().clamp_min(1)
    ce = F.cross_entropy(logits, mask, ignore_index=ignore_index)
    return ce + _soft_dice(logits, mask, valid) if loss == "dice_ce" else ce


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
    (mean absolute error of the target); for ``segment`` also ``precision``, ``recall`` and ``f1`` of the
    classes other than 0 (pixels of the batch).

    Args:
        task_model: The model with its head.
        task: ``classify``, ``segment`` or ``regress``.
        ignore_index: Mask value left out of the segmentation loss and metric (None: none).
        loss: Segmentation loss, one of :data:`SEGMENT_LOSSES` (``ce`` for the other tasks).
    """

    def __init__(self, task_model: TaskModel, task: str, ignore_index: int | None = None, loss: str = "ce"):
        super().__init__()
        if loss not in SEGMENT_LOSSES or (loss != "ce" and task != "segment"):
            raise InvalidParameterError(f"`loss` {loss!r} is not available for task {task!r}; segment takes "
                                        f"{list(SEGMENT_LOSSES)}, the other tasks 'ce'.")  # fmt: skip
        self.net, self.task, self.loss = task_model, task, loss
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
            return self._segment(pred, batch["mask"])
        target = batch["target"]
        return {"loss": F.mse_loss(pred, target), "mae": (pred - target).abs().mean()}

    def _segment(self, pred: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        valid = mask != self.ignore_index
        label = pred.argmax(1)
        hits = ((label == mask) & valid).sum() / valid.sum().clamp_min(1)
        found, true = (label > 0) & valid, (mask > 0) & valid
        both = (found & true).sum().float()
        precision, recall = both / found.sum().clamp_min(1), both / true.sum().clamp_min(1)
        f1 = 2 * both / (found.sum() + true.sum()).clamp_min(1)
        loss = segment_loss(pred, mask, self.loss, self.ignore_index)
        return {"loss": loss, "pixel_accuracy": hits, "precision": precision, "recall": recall, "f1": f1}

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
