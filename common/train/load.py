"""Reload a trained run for inference: the exported model plus its task head."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hyperplex.common.errors import DataNotFoundError
from hyperplex.common.models import load_model
from hyperplex.common.train.heads import TaskModel, make_head

__all__ = ["load_task_model"]


def load_task_model(run: str | os.PathLike[str]) -> TaskModel:
    """The :class:`TaskModel` of a run folder (``model.safetensors`` + ``head.safetensors`` if any), in eval mode.

    Raises:
        DataNotFoundError: If the folder has no exported model.
        FileFormatError: If a file is not what the trainer writes.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    folder = Path(run)
    if not (folder / "model.safetensors").is_file():
        raise DataNotFoundError(f"{folder} has no model.safetensors; is it a finished `hyperplex train` run?")
    model = load_model(folder / "model.safetensors")
    head_file = folder / "head.safetensors"
    if not head_file.is_file():
        return TaskModel(model, "direct", None, {"mode": "direct", "in_dim": 0, "out_dim": 0}).eval()
    with safe_open(str(head_file), framework="pt") as handle:
        spec = json.loads((handle.metadata() or {})["head_spec"])
    head = make_head(spec["mode"], spec["in_dim"], spec["out_dim"])
    head.load_state_dict(load_file(str(head_file)))  # type: ignore[union-attr]
    return TaskModel(model, spec["mode"], head, spec).eval()
