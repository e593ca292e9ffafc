"""The training loop: :func:`train` runs one config, single-process or under ``torchrun``."""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hyperplex.common.atomic import atomic_path
from hyperplex.common.errors import InvalidParameterError, NoValidDataError
from hyperplex.common.models import HierarchicalChannelSampler
from hyperplex.common.progress import progress, quiet
from hyperplex.common.train.checkpoint import load_checkpoint, save_checkpoint
from hyperplex.common.train.config import TrainConfig, load_config
from hyperplex.common.train.distributed import Dist
from hyperplex.common.train.metrics import MetricsLog
from hyperplex.common.train.optim import build_optimizer, lr_at, set_lr
from hyperplex.common.train.precision import Precision, resolve_device
from hyperplex.common.train.sampler import EpochBatches
from hyperplex.common.train.setup import make_datasets, make_objective
from hyperplex.common.train.store import TileStore

__all__ = ["TrainResult", "train"]


@dataclass
class TrainResult:
    """What a run produced.

    Attributes:
        out: The run folder (``model.safetensors``, ``metrics.csv``, ``checkpoint/``, ``summary.json``).
        step: Optimiser steps done in total (including resumed ones).
        metrics: Last logged training metrics (averaged over processes).
        objective: The trained objective module (model, heads; the DINO teacher).
        digests: SHA-256 of the weights on every rank (all equal when DDP kept them in sync).
        seconds_per_step: Mean wall time of this invocation's steps.
    """

    out: Path
    step: int
    metrics: dict[str, float]
    objective: nn.Module
    digests: list[str] = field(default_factory=list)
    seconds_per_step: float = 0.0


def train(config: TrainConfig | None = None, **options: Any) -> TrainResult:
    """Train a model on a tile store.

    Args:
        config: The run's configuration; or give its fields as keywords (``model``, ``data``, ``task``, ...).
        **options: :class:`TrainConfig` fields (used when ``config`` is None).

    Returns:
        The result; files are in ``config.out``.

    Raises:
        HyperplexError: On bad options, data or model/task mismatches (clear message).
    """
    cfg = config if config is not None else load_config(**options)
    trainer = Trainer(cfg)
    try:
        with quiet(cfg.quiet or not trainer.dist.is_main):
            return trainer.fit()
    finally:
        trainer.close()


class Trainer:
    """State of one run (see :func:`train`)."""

    def __init__(self, cfg: TrainConfig):
        self.cfg, self.dist = cfg, Dist()
        self.device = resolve_device(cfg.device, self.dist.local_rank)
        self.dist.init(self.device)
        self.precision = Precision.choose(cfg.precision, self.device)
        self.out = Path(cfg.out)
        self.store = TileStore.open(cfg.data)
        self.train_set, self.val_set = make_datasets(cfg, self.store)
        self.objective = make_objective(cfg, self.store).to(self.device)
        self.module = self._wrap(self.objective)
        self.optimizer = build_optimizer(self.objective, cfg.lr, cfg.weight_decay)
        self.scaler = torch.amp.GradScaler(self.device.type) if self.precision.needs_scaler else None
        self.hcs = self._trainer_hcs()
        w = self.dist.world_size
        self.steps_per_epoch = EpochBatches.steps_per_epoch(len(self.train_set), cfg.batch_size, w)
        if self.steps_per_epoch < 1:
            raise InvalidParameterError(
                f"{len(self.train_set)} training tiles are fewer than one global batch ({cfg.batch_size} x {w}); "
                "lower `batch_size` or add tiles."
            )
        self.total = cfg.max_steps or cfg.epochs * self.steps_per_epoch
        self.step = self._resume() if cfg.resume else 0
        if self.step == 0:  # per-rank streams for dropout, HCS and views (weights were seeded identically)
            torch.manual_seed(cfg.seed + 7919 * self.dist.rank)
        self.log = MetricsLog(self.out, self.dist.is_main, cfg.tensorboard, self.step if cfg.resume else None)
        self._write_json("config.json", cfg.to_dict())

    def _wrap(self, objective: nn.Module) -> nn.Module:
        if not self.dist.enabled:
            return objective
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(objective, device_ids=ids, find_unused_parameters=True)

    def _trainer_hcs(self) -> HierarchicalChannelSampler | None:
        """The trainer's HCS for channel-adaptive models that do not sample channels themselves."""
        model = self.objective.net.model
        if not self.cfg.hcs or "hcs" in model.config:
            return None
        if not type(model).channel_adaptive:
            raise InvalidParameterError(f"hcs=True needs a channel-adaptive model; {self.cfg.model} has fixed bands.")
        return HierarchicalChannelSampler(enabled=True)

    def _write_json(self, name: str, data: dict[str, Any]) -> None:
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.out / name) as tmp:
                tmp.write_text(json.dumps(data, indent=1, default=str))

    def close(self) -> None:
        """Release the metrics writer and the process group."""
        if hasattr(self, "log"):
            self.log.close()
        self.dist.close()

    # ------------------------------------------------------------------ the loop
    def fit(self) -> TrainResult:
        """Train until the schedule ends (or ``stop_after`` steps), checkpoint, export, summarise."""
        start, sums, count, last = self.step, {}, 0, {}
        bar = progress(total=self.total, initial=self.step, desc=f"train {self.cfg.model}", unit="step")
        began = time.perf_counter()
        while self.step < self.total and not self._stopped(start):
            epoch, offset = divmod(self.step, self.steps_per_epoch)
            for batch in self._loader(epoch, offset):
                values = self._train_step(batch)
                self.step += 1
                bar.update(1)
                count += 1
                sums = {k: sums.get(k, 0.0) + v for k, v in values.items()}
                if self.step % self.cfg.log_every == 0 or self.step == self.total:
                    last = self._log_train(sums, count, epoch)
                    bar.set_postfix(loss=f"{last['loss']:.4g}")
                    sums, count = {}, 0
                if self.cfg.checkpoint_every and self.step % self.cfg.checkpoint_every == 0:
                    self._save()
                if self.step >= self.total or self._stopped(start):
                    break
            if self.step % self.steps_per_epoch == 0 or self.step >= self.total:
                self._validate(epoch)
        bar.close()
        seconds = (time.perf_counter() - began) / max(self.step - start, 1)
        last = self._log_train(sums, count, self.step // self.steps_per_epoch) if count else last
        return self._finish(last, seconds)

    def _stopped(self, start: int) -> bool:
        return self.cfg.stop_after is not None and self.step - start >= self.cfg.stop_after

    def _loader(self, epoch: int, offset: int) -> torch.utils.data.DataLoader:
        sampler = EpochBatches(
            len(self.train_set), self.cfg.batch_size, self.cfg.seed, epoch, self.dist.rank, self.dist.world_size, offset
        )
        return torch.utils.data.DataLoader(
            self.train_set, batch_sampler=sampler, num_workers=self.cfg.num_workers,
            pin_memory=self.device.type == "cuda", generator=torch.Generator().manual_seed(self.cfg.seed + epoch),
        )  # fmt: skip

    def _inputs(self, batch: dict[str, torch.Tensor], sample: bool) -> tuple[torch.Tensor, Any, dict]:
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        x, channels = batch["image"], self.store.channels
        keep = self.hcs(x.shape[1]) if sample and self.hcs is not None else None
        if keep is not None:
            x, channels = x[:, keep.to(self.device)], channels[keep.numpy()]
        return x, channels, batch

    def _train_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        self.module.train()
        set_lr(self.optimizer, lr_at(self.step, self.total, cfg.lr, cfg.min_lr, cfg.warmup_steps))
        x, channels, batch = self._inputs(batch, sample=True)
        with self.precision.autocast():
            out = self.module(x, channels, None, batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss = out["loss"]
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if cfg.grad_clip > 0:
            nn.utils.clip_grad_norm_(self.objective.parameters(), cfg.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.objective.after_step((self.step + 1) / self.total)
        return {k: v.detach().float() for k, v in out.items()}

    def _log_train(self, sums: dict[str, torch.Tensor], count: int, epoch: int) -> dict[str, float]:
        names = sorted(sums)
        means = self.dist.mean(torch.stack([sums[k] for k in names]) / count).tolist()
        values = dict(zip(names, means)) | {"lr": self.optimizer.param_groups[0]["lr"]}
        if not all(map(lambda v: v == v and abs(v) != float("inf"), means)):
            raise NoValidDataError(
                f"Training diverged at step {self.step} ({values}); lower `lr`, raise `warmup_steps` or use fp32."
            )
        self.log.write(self.step, epoch, "train", values)
        return values

    @torch.no_grad()
    def _validate(self, epoch: int) -> None:
        """Mean loss and metrics over the validation tiles (sharded over processes), written as split ``val``."""
        if self.val_set is None:
            return
        self.module.eval()
        index = list(range(self.dist.rank, len(self.val_set), self.dist.world_size))
        batches = [index[i : i + self.cfg.batch_size] for i in range(0, len(index), self.cfg.batch_size)]
        loader = torch.utils.data.DataLoader(self.val_set, batch_sampler=batches, num_workers=self.cfg.num_workers)
        sums: dict[str, torch.Tensor] = {}
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # validation draws (views, MAE masks) leave training's RNG alone
            for batch in loader:
                x, channels, batch = self._inputs(batch, sample=False)
                with self.precision.autocast():
                    out = self.objective(x, channels, None, batch)
                n = float(x.shape[0])
                sums = {k: sums.get(k, 0.0) + v.detach().float() * n for k, v in out.items()} | {
                    "_n": sums.get("_n", 0.0) + torch.tensor(n, device=self.device)
                }
        names = sorted(k for k in sums if k != "_n")
        totals = self.dist.mean(torch.stack([sums[k] for k in [*names, "_n"]]))
        self.log.write(self.step, epoch, "val", dict(zip(names, (totals[:-1] / totals[-1]).tolist())))

    # ------------------------------------------------------------------ checkpoints
    def _rng_states(self) -> dict[str, torch.Tensor]:
        states = {"cpu": self.dist.gather(torch.get_rng_state().to(self._collective_device())).cpu()}
        if self.device.type == "cuda":
            states["cuda"] = self.dist.gather(torch.cuda.get_rng_state(self.device).to(self.device)).cpu()
        return states

    def _collective_device(self) -> torch.device:
        return self.device if self.dist.enabled and self.device.type == "cuda" else torch.device("cpu")

    def _save(self) -> None:
        self.dist.sync_buffers(self.objective)
        rng = self._rng_states()
        if self.dist.is_main:
            state = {
                "step": self.step, "world_size": self.dist.world_size, "config": self.cfg.to_dict(),
                "scaler": None if self.scaler is None else self.scaler.state_dict(),
            }  # fmt: skip
            save_checkpoint(self.out / "checkpoint", self.objective, self.optimizer, rng, state)
        self.dist.barrier()

    def _resume(self) -> int:
        """Load ``out/checkpoint`` if present; return the step to continue from (0 when there is none)."""
        folder = self.out / "checkpoint"
        if not (folder / "state.json").exists():
            return 0
        module, optimizer, rng, state = load_checkpoint(folder)
        old = state["config"]
        for key in ("model", "task", "batch_size"):
            if old.get(key) != getattr(self.cfg, key):
                raise InvalidParameterError(
                    f"{folder} was written with {key}={old.get(key)!r}, not {getattr(self.cfg, key)!r}; "
                    "resume with the same settings or use another `out` folder."
                )
        self.objective.load_state_dict(module)
        self.optimizer.load_state_dict(optimizer)
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self._restore_rng(rng, int(state["world_size"]), int(state["step"]))
        return int(state["step"])

    def _restore_rng(self, rng: dict[str, torch.Tensor], world_size: int, step: int) -> None:
        if world_size != self.dist.world_size:
            warnings.warn(
                f"Checkpoint from {world_size} processes resumed on {self.dist.world_size}: random streams are "
                "re-seeded, so the run is not bit-identical to an uninterrupted one.",
                stacklevel=3,
            )
            torch.manual_seed(self.cfg.seed + 7919 * self.dist.rank + 104729 * step)
            return
        torch.set_rng_state(rng["cpu"][self.dist.rank].contiguous())
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"][self.dist.rank].contiguous(), self.device)

    def _finish(self, metrics: dict[str, float], seconds: float) -> TrainResult:
        self._save()
        digests = self.dist.weight_digests(self.objective, self._collective_device())
        if self.dist.is_main:
            self.objective.export(self.out)
        summary = {
            "step": self.step, "total_steps": self.total, "seconds_per_step": seconds, "metrics": metrics,
            "device": str(self.device), "precision": self.precision.name, "world_size": self.dist.world_size,
            "rank_weight_digests": digests,
        }  # fmt: skip
        self._write_json("summary.json", summary)
        self.dist.barrier()
        return TrainResult(self.out, self.step, metrics, self.objective, digests, seconds)
