"""Checkpoints without pickle: safetensors for every tensor, JSON for everything else.

``<out>/checkpoint/`` holds

- ``module.safetensors``: the objective's state (model, heads, DINO teacher and centre);
- ``optimizer.safetensors``: the optimiser's per-parameter tensors (``state.<i>.<name>``) and the
  torch RNG states of every rank (``rng.cpu`` (W, n) uint8, ``rng.cuda`` when on a GPU);
- ``state.json``: step, epoch, the optimiser's param groups and scalar state, the loss scaler, the
  world size and the run config (the LR schedule is a function of the step).

The folder is replaced atomically, so an interruption leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from hyperplex.common.atomic import atomic_path
from hyperplex.common.errors import FileFormatError

__all__ = ["CHECKPOINT_FORMAT", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_FORMAT = "hyperplex-train-checkpoint"


def flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors (``state.<i>.<name>``) and JSON values."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, entries in state["state"].items():
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{name}"] = value.detach().cpu().contiguous().clone()
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`flatten_optimizer`."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for index, entries in meta["scalars"].items():
        state.setdefault(int(index), {}).update(entries)
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def save_checkpoint(
    folder: Path, module: torch.nn.Module, optimizer: torch.optim.Optimizer, rng: dict[str, torch.Tensor],
    state: dict[str, Any],
) -> None:  # fmt: skip
    """Write the checkpoint folder (call on rank 0; ``rng`` holds every rank's states)."""
    from safetensors.torch import save_file

    weights = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
    opt_tensors, opt_meta = flatten_optimizer(optimizer.state_dict())
    opt_tensors |= {f"rng.{k}": v.cpu().contiguous() for k, v in rng.items()}
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        save_file(weights, str(tmp / "module.safetensors"))
        save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
        payload = {"format": CHECKPOINT_FORMAT, "version": 1, **state, "optimizer": opt_meta}
        (tmp / "state.json").write_text(json.dumps(payload, indent=1))


def load_checkpoint(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, torch.Tensor], dict]:
    """Read a checkpoint folder.

    Returns:
        ``(module_state, optimizer_state, rng, state)``; ``rng`` maps ``cpu`` / ``cuda`` to (W, n) tensors.

    Raises:
        FileFormatError: If the folder is not a complete checkpoint.
    """
    from safetensors.torch import load_file

    try:
        state = json.loads((folder / "state.json").read_text())
        module = load_file(str(folder / "module.safetensors"))
        tensors = load_file(str(folder / "optimizer.safetensors"))
    except Exception as err:  # missing files, JSON and safetensors errors
        raise FileFormatError(f"{folder}: not a readable training checkpoint ({err}).") from err
    if state.get("format") != CHECKPOINT_FORMAT:
        raise FileFormatError(f"{folder}: state.json is not a {CHECKPOINT_FORMAT} file.")
    rng = {k.removeprefix("rng."): v for k, v in tensors.items() if k.startswith("rng.")}
    return module, unflatten_optimizer(tensors, state.pop("optimizer")), rng, state
