"""Assemble the pieces of a run from its config: data splits, model, objective."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from hyperplex.common.errors import DataNotFoundError
from hyperplex.common.train.build import build_task_model
from hyperplex.common.train.config import TrainConfig
from hyperplex.common.train.dataset import TileDataset
from hyperplex.common.train.dino import Dino, DinoOptions
from hyperplex.common.train.heads import TaskModel
from hyperplex.common.train.objectives import FIELDS, MaskedAutoencoding, Supervised
from hyperplex.common.train.store import TileStore

__all__ = ["make_datasets", "make_objective"]


def make_datasets(cfg: TrainConfig, store: TileStore) -> tuple[TileDataset, TileDataset | None]:
    """Training and validation datasets; validation is every ``round(1 / val_fraction)``-th tile."""
    fields = FIELDS[cfg.task]
    if cfg.val_fraction == 0:
        return TileDataset(store, fields), None
    every = max(round(1 / cfg.val_fraction), 2)
    index = np.arange(store.count)
    val = index[::every]
    return TileDataset(store, fields, indices=np.setdiff1d(index, val)), TileDataset(store, fields, indices=val)


def _load_init(task_model: TaskModel, path: str) -> None:
    """Start from pretrained weights (keys of the model's own layout; missing keys such as a new head stay)."""
    from safetensors.torch import load_file

    if not Path(path).is_file():
        raise DataNotFoundError(f"`init` weights {path} do not exist.")
    task_model.model.load_state_dict_checked(load_file(path), strict=False, source=path)


def _embed_dim(task_model: TaskModel, store: TileStore) -> int:
    x = torch.randn(1, *store.tile_shape, generator=torch.Generator().manual_seed(0))
    was = task_model.training
    with torch.no_grad():
        out = task_model.eval()(x, store.channels)
    task_model.train(was)
    return int(out.shape[-1])


def make_objective(cfg: TrainConfig, store: TileStore) -> nn.Module:
    """The objective module of ``cfg.task`` around the model built for ``store``.

    ChannelViT's own HCS follows ``cfg.hcs``; for ``dino`` it is off unless asked for (the official
    code says it only suits supervised training).
    """
    hcs = False if cfg.task == "dino" and cfg.hcs is None else cfg.hcs
    task_model = build_task_model(cfg.model, cfg.task, store, dict(cfg.model_args), cfg.seed, hcs)
    if cfg.init:
        _load_init(task_model, cfg.init)
    if cfg.task == "mae":
        return MaskedAutoencoding(task_model)
    if cfg.task == "dino":
        options = DinoOptions.from_dict(cfg.dino)
        return Dino(task_model, _embed_dim(task_model, store), store.tile_shape, store.channels, options)
    return Supervised(task_model, cfg.task, store.attrs.get("mask_ignore"), cfg.loss)
