"""Build the model of a run: fit a preset to the tile store and pick the head for the task.

Only the public model API is used: ``create_model(name, **overrides)``, ``model.config``,
``model.check_channels``, ``model(x, channels)`` and ``model.feature_map(x, channels)``.
"""

from __future__ import annotations

from typing import Any

import torch

from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import ChannelMismatchError, ModelCompatibilityError
from hyperplex.common.models import create_model, preset_info
from hyperplex.common.train.heads import TaskModel, make_head
from hyperplex.common.train.store import TileStore

__all__ = ["build_task_model", "fit_model_args", "task_outputs"]


def task_outputs(task: str, store: TileStore) -> int:
    """Output size of a supervised task: classes of ``label`` / ``mask``, or target channels (0 otherwise)."""
    if task == "classify":
        return len(store.classes("label"))
    if task == "segment":
        return len(store.classes("mask"))
    if task == "regress":
        target = store.target_channels
        if target is None:
            store.classes("target")  # raises: no target array
        return len(target)  # type: ignore[arg-type]
    return 0


def fit_model_args(name: str, store: TileStore, user_args: dict[str, Any], hcs: bool | None = None) -> dict[str, Any]:
    """Overrides that make preset ``name`` accept the store's channels and tile size.

    Sets ``img_size`` to the (square) tile side and, only where the preset rejects the channels, the
    registry's sizing of the preset (``preset_info(name).channel_overrides``, the same code path as
    ``create_model(name, channels=...)``: ``channel_vocab``, ``in_chans`` or ``max_channels``). A preset
    without a sizing tag (MIPHEI) gets ``in_chans`` and, when their length no longer fits, ``input_mean`` /
    ``input_std`` from the store's statistics. ``hcs`` (when not None) switches a model's own channel
    sampling (ChannelViT's ``hcs``). User arguments always win.

    Raises:
        ChannelMismatchError: If no such override makes the model accept the channels (e.g. LESS ViT
            on channels without wavelengths).
    """
    _, h, w = store.tile_shape
    base = create_model(name, **user_args).config
    args: dict[str, Any] = {"img_size": h} if "img_size" in base and h == w and base["img_size"] != h else {}
    args |= {"hcs": hcs} if hcs is not None and "hcs" in base else {}
    model = create_model(name, **{**args, **user_args})
    try:
        model.check_channels(store.channels)
        return args
    except ChannelMismatchError as err:
        args |= {k: v for k, v in _channel_fixes(name, store, base).items() if k not in user_args}
        model = create_model(name, **{**args, **user_args})
        try:
            model.check_channels(store.channels)
        except ChannelMismatchError:
            raise err from None
    return args


def _channel_fixes(name: str, store: TileStore, base: dict[str, Any]) -> dict[str, Any]:
    """Constructor overrides that size preset ``name`` to the store's channels."""
    fixes = preset_info(name).channel_overrides(ChannelSet.coerce(store.channels))
    if fixes or "in_chans" not in base:
        return fixes
    c = store.tile_shape[0]
    fixes = {"in_chans": c}
    if "input_mean" in base and len(base["input_mean"]) != c:  # the model's own normalize() = the store's
        fixes |= {"input_mean": store.attrs["image_mean"], "input_std": store.attrs["image_std"]}
    return fixes


@torch.no_grad()
def _probe(model: torch.nn.Module, store: TileStore, dense: bool) -> torch.Tensor:
    """Output of the model (or of its ``feature_map``) on one random tile, in eval mode, RNG untouched."""
    was_training = model.training
    model.eval()
    x = torch.randn(1, *store.tile_shape, generator=torch.Generator().manual_seed(0))
    try:
        if dense:
            if not callable(getattr(model, "feature_map", None)):
                raise ModelCompatibilityError(
                    f"{type(model).__name__} has no feature_map(x, channels); this task needs dense features."
                )
            return model.feature_map(x, store.channels)
        return model(x, store.channels)
    finally:
        model.train(was_training)


def _direct_args(config: dict[str, Any], out: Any, task: str, k: int, store: TileStore) -> dict[str, Any] | None:
    """Overrides that make the model itself output the prediction, or None when it needs a head."""
    if not isinstance(out, torch.Tensor):
        return None
    if task == "classify" and out.ndim == 2 and "num_classes" in config:
        return {"num_classes": k}
    if task in ("segment", "regress") and out.ndim == 4 and out.shape[-2:] == store.tile_shape[1:]:
        if task == "regress" and "markers" in config:
            return {"markers": list(store.target_channels.names)}  # type: ignore[union-attr]
        if "num_classes" in config:
            return {"num_classes": k}
    return None


def _head_mode(task: str, out: Any) -> str:
    if not isinstance(out, torch.Tensor) or out.ndim not in (2, 4):
        raise ModelCompatibilityError(f"The model's output ({type(out).__name__}) cannot feed a {task} head.")
    if task == "classify":
        return "vector" if out.ndim == 2 else "pooled"
    return "dense"


def _check_output(out: Any, task: str, k: int, store: TileStore, name: str) -> None:
    want = (1, k) if task == "classify" else (1, k, *store.tile_shape[1:])
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != want:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ModelCompatibilityError(f"{name} outputs {got} but the {task} task needs {want}; check `model_args`.")


def build_task_model(
    name: str, task: str, store: TileStore, user_args: dict[str, Any], seed: int, hcs: bool | None = None
) -> TaskModel:
    """Create preset ``name`` fitted to ``store`` and wrap it with the head ``task`` needs.

    The weights are initialised under ``torch.manual_seed(seed)`` (reproducible).
    ``dino`` and ``mae`` get the bare model (their objectives add what they need). ``hcs``: see
    :func:`fit_model_args`.

    Raises:
        ModelCompatibilityError: If the model cannot produce the task's output.
        ChannelMismatchError: If it cannot take the store's channels.
    """
    args = {**fit_model_args(name, store, user_args, hcs), **user_args}
    k = task_outputs(task, store)
    model = create_model(name, **args)
    direct = None
    if task in ("classify", "segment", "regress"):
        direct = _direct_args(model.config, _probe(model, store, dense=False), task, k, store)
        args = {**args, **(direct or {}), **user_args}
    torch.manual_seed(seed)
    model = create_model(name, **args)
    model.trained_channels = ChannelSet.coerce(store.channels)
    if task in ("dino", "mae"):
        return TaskModel(model, "direct", None, {"mode": "direct", "in_dim": 0, "out_dim": 0})
    if direct is not None:
        _check_output(_probe(model, store, dense=False), task, k, store, name)
        return TaskModel(model, "direct", None, {"mode": "direct", "in_dim": 0, "out_dim": k})
    mode = _head_mode(task, _probe(model, store, dense=False))
    features = _probe(model, store, dense=mode in ("pooled", "dense"))
    spec = {"mode": mode, "in_dim": int(features.shape[1]), "out_dim": k}
    return TaskModel(model, mode, make_head(mode, spec["in_dim"], k), spec)
