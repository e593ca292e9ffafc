"""One trainer for every model family: supervised, DINO and masked-autoencoder training on tile stores.

``train(model=..., data=..., task=..., out=...)`` (or ``hyperplex train``) trains a registered preset on
a tile store (:func:`write_tiles`, read lazily by :class:`TileDataset`): ``classify`` (tile label),
``segment`` (per-pixel mask), ``regress`` (per-pixel target), ``dino`` (self-distillation, ChAda-ViT's
pretraining) or ``mae`` (Hyper-MAE for LESS ViT). Hierarchical channel sampling, mixed precision on a
GPU, DDP under ``torchrun``, pickle-free checkpoints with exact resume, CSV/TensorBoard metrics.

torch is imported with this package; ``hyperplex.common`` itself does not import it.
"""

from hyperplex.common.train.build import build_task_model, fit_model_args
from hyperplex.common.train.chada_mim import ChAdaMIM
from hyperplex.common.train.config import TASKS, TrainConfig, load_config
from hyperplex.common.train.dataset import TileDataset
from hyperplex.common.train.dino import DinoOptions
from hyperplex.common.train.heads import TaskModel
from hyperplex.common.train.load import load_task_model
from hyperplex.common.train.loop import TrainResult, train
from hyperplex.common.train.scene import object_class_map, scene_tiles
from hyperplex.common.train.store import TileStore, write_tiles

__all__ = [
    "TASKS",
    "ChAdaMIM",
    "DinoOptions",
    "TaskModel",
    "TileDataset",
    "TileStore",
    "TrainConfig",
    "TrainResult",
    "build_task_model",
    "fit_model_args",
    "load_config",
    "load_task_model",
    "object_class_map",
    "scene_tiles",
    "train",
    "write_tiles",
]
