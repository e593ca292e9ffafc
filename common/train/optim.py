"""AdamW with decay only on weight matrices, and a warm-up + cosine learning-rate schedule.

The schedule is a pure function of the step, so resuming needs only the step number.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["build_optimizer", "lr_at", "set_lr"]


def build_optimizer(module: nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over the trainable parameters, with weight decay on weight matrices only.

    Biases, norms, tokens and embeddings (ndim < 2, or named ``*token*`` / ``*embed*`` other than the
    patch projections) get no weight decay.
    """
    decay, no_decay = [], []
    for name, param in module.named_parameters():
        if not param.requires_grad:
            continue
        plain = param.ndim < 2 or "token" in name or ("embed" in name and "patch_embed" not in name)
        (no_decay if plain else decay).append(param)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr)


def lr_at(step: int, total: int, lr: float, min_lr: float, warmup: int) -> float:
    """Learning rate of step ``step`` (0-based) of ``total``: linear warm-up, then cosine to ``min_lr``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def set_lr(optimizer: torch.optim.Optimizer, value: float) -> None:
    """Set every group's learning rate."""
    for group in optimizer.param_groups:
        group["lr"] = value
