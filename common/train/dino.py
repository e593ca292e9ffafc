"""DINO self-distillation, the self-supervised pretraining of ChAda-ViT (Bourriez et al., CVPR 2024).

Caron et al., "Emerging Properties in Self-Supervised Vision Transformers" (ICCV 2021); ChAda-ViT
trains with it on IDRCell100k (solo-learn ``dino.py``). The student sees 2 global and ``local_crops``
local crops, the teacher (an exponential moving average of the student) the 2 global ones; the loss is
the cross-entropy between the centred, sharpened teacher distribution and the student's, over
prototype logits of a projection head (3-layer MLP, L2-normalised bottleneck, cosine prototypes, i.e.
``norm_last_layer=True``). As ChAda-ViT's ``RandomDiscarder``, each view drops one random channel with
probability ``discard`` (per sample via the channel mask when the model takes one, else per view).
Simplifications: constant teacher temperature (no warm-up), no last-layer freezing.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from hyperplex.common.errors import ChannelMismatchError, InvalidParameterError
from hyperplex.common.train.heads import TaskModel
from hyperplex.common.train.views import discard_channels, jitter_channels, random_resized_crop

__all__ = ["Dino", "DinoHead", "DinoOptions"]


@dataclass(frozen=True)
class DinoOptions:
    """DINO settings (``TrainConfig.dino``).

    Attributes:
        out_dim: Prototypes (65536 in ChAda-ViT, 4096 here by default).
        hidden_dim: MLP hidden width.
        bottleneck_dim: Bottleneck width before the prototypes.
        local_crops: Local crops per image.
        local_size: Local crop side (default: half the tile side).
        global_scale: Area range of the global crops.
        local_scale: Area range of the local crops.
        student_temp: Student temperature.
        teacher_temp: Teacher temperature.
        center_momentum: Momentum of the teacher-output centre.
        momentum: Teacher EMA momentum at the start (cosine to 1 at the end).
        jitter: Per-channel gain/offset jitter strength.
        discard: Probability to drop one channel of a view (ChAda-ViT: 2/3).
    """

    out_dim: int = 4096
    hidden_dim: int = 2048
    bottleneck_dim: int = 256
    local_crops: int = 4
    local_size: int | None = None
    global_scale: tuple[float, float] = (0.4, 1.0)
    local_scale: tuple[float, float] = (0.05, 0.4)
    student_temp: float = 0.1
    teacher_temp: float = 0.04
    center_momentum: float = 0.9
    momentum: float = 0.996
    jitter: float = 0.2
    discard: float = 2 / 3

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DinoOptions:
        """Options from a mapping (``TrainConfig.dino``).

        Raises:
            InvalidParameterError: On unknown keys.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidParameterError(f"Unknown DINO options {unknown}; known: {sorted(known)}.")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


class DinoHead(nn.Module):
    """DINO projection head: MLP (GELU) -> L2-normalised bottleneck -> cosine prototype logits."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int, bottleneck_dim: int):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Linear(hidden_dim, hidden_dim), nn.GELU(),
            nn.Linear(hidden_dim, bottleneck_dim),
        )  # fmt: skip
        self.prototypes = nn.Parameter(torch.randn(out_dim, bottleneck_dim) * 0.02)
        for module in self.mlp:
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Prototype logits (B, out_dim) of embeddings (B, in_dim)."""
        z = F.normalize(self.mlp(x), dim=-1)
        return z @ F.normalize(self.prototypes, dim=-1).t()


def _takes_channel_mask(model: nn.Module, tile_shape: tuple[int, int, int], channels: Any) -> bool:
    """True if ``model(x, channels, channel_mask)`` accepts a mask with absent channels."""
    x = torch.zeros(1, *tile_shape)
    mask = torch.ones(1, tile_shape[0], dtype=torch.bool)
    mask[0, 0] = tile_shape[0] < 2
    was = model.training
    try:
        with torch.no_grad():
            model.eval()(x, channels, mask)
        return True
    except (ChannelMismatchError, InvalidParameterError, TypeError):
        return False
    finally:
        model.train(was)


class Dino(nn.Module):
    """Student, EMA teacher, heads and loss of DINO around a backbone with a CLS embedding.

    Args:
        task_model: The backbone (mode ``direct``; ``model(x, channels)`` returns (B, D)).
        embed_dim: D.
        tile_shape: (C, H, W) of the training tiles.
        channels: Their channels.
        options: DINO settings.
    """

    def __init__(self, task_model: TaskModel, embed_dim: int, tile_shape: tuple[int, int, int], channels: Any,
                 options: DinoOptions):  # fmt: skip
        super().__init__()
        self.options = options
        self.student = task_model
        self.student_head = DinoHead(embed_dim, options.out_dim, options.hidden_dim, options.bottleneck_dim)
        self.teacher = copy.deepcopy(task_model).requires_grad_(False).eval()
        self.teacher_head = copy.deepcopy(self.student_head).requires_grad_(False)
        self.register_buffer("center", torch.zeros(1, options.out_dim))
        self.per_sample_discard = _takes_channel_mask(task_model.model, tile_shape, channels)
        self.global_size = tile_shape[1]
        self.local_size = options.local_size or max(tile_shape[1] // 2, 1)

    @property
    def net(self) -> TaskModel:
        """The student backbone (the model being trained)."""
        return self.student

    def train(self, mode: bool = True) -> Dino:
        """Set the student's mode; the teacher always runs in eval mode."""
        super().train(mode)
        self.teacher.eval()
        return self

    def _view(self, x: torch.Tensor, channels: Any, size: int, scale: tuple[float, float]) -> tuple:
        view = jitter_channels(random_resized_crop(x, size, scale), self.options.jitter)
        if self.per_sample_discard:
            view, mask = discard_channels(view, self.options.discard)
            return view, channels, mask
        if x.shape[1] > 1 and float(torch.rand(())) < self.options.discard:  # one channel for the whole view
            keep = torch.randperm(x.shape[1])[1:].sort().values
            return view[:, keep.to(view.device)], channels[keep.numpy()], None
        return view, channels, None

    def _embed(self, net: TaskModel, head: nn.Module, views: list[tuple]) -> list[torch.Tensor]:
        return [head(net(*v).float()) for v in views]

    def forward(
        self, x: torch.Tensor, channels: Any, channel_mask: torch.Tensor | None, batch: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """DINO loss of a batch; metric ``teacher_entropy`` (collapse shows as 0 or log(out_dim))."""
        o = self.options
        globals_ = [self._view(x, channels, self.global_size, o.global_scale) for _ in range(2)]
        locals_ = [self._view(x, channels, self.local_size, o.local_scale) for _ in range(o.local_crops)]
        student = self._embed(self.student, self.student_head, globals_ + locals_)
        with torch.no_grad():
            teacher = self._embed(self.teacher, self.teacher_head, globals_)
            probs = [F.softmax((t - self.center) / o.teacher_temp, dim=-1) for t in teacher]
        loss, pairs = x.new_zeros((), dtype=torch.float32), 0
        for i, p in enumerate(probs):
            for j, s in enumerate(student):
                if i != j:
                    loss = loss + torch.sum(-p * F.log_softmax(s / o.student_temp, dim=-1), dim=-1).mean()
                    pairs += 1
        self._update_center(torch.cat(teacher))
        entropy = -(probs[0] * probs[0].clamp_min(1e-12).log()).sum(-1).mean()
        return {"loss": loss / pairs, "teacher_entropy": entropy}

    @torch.no_grad()
    def _update_center(self, teacher: torch.Tensor) -> None:
        batch_center = teacher.mean(0, keepdim=True)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(batch_center)
            batch_center /= torch.distributed.get_world_size()
        m = self.options.center_momentum
        self.center.mul_(m).add_(batch_center, alpha=1 - m)

    @torch.no_grad()
    def after_step(self, progress: float) -> None:
        """EMA update of the teacher; momentum rises from ``momentum`` to 1 on a cosine."""
        m = 1 - (1 - self.options.momentum) * (math.cos(math.pi * min(progress, 1.0)) + 1) / 2
        for pairs in ((self.student, self.teacher), (self.student_head, self.teacher_head)):
            for s, t in zip(pairs[0].parameters(), pairs[1].parameters()):
                t.mul_(m).add_(s.detach(), alpha=1 - m)

    def export(self, folder: Path) -> None:
        """The teacher backbone (DINO's evaluation model) as ``model.safetensors``."""
        self.teacher.model.trained_channels = self.student.model.trained_channels
        self.teacher.model.save(folder / "model.safetensors")
