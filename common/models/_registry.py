"""Preset registry (timm style) and loading of saved models.

A preset is a function decorated with :func:`register_model`; its name is the preset name, it takes
``**overrides`` and returns the model. ``create_model(name, **overrides)`` calls it and sets
``model.preset``. Each preset carries a :class:`PresetInfo` (timm's ``pretrained_cfg``, kept minimal):
the input it suits (``microscopy``: marker names; ``hyperspectral``: wavelengths; ``he``: RGB H&E in,
markers out), the constructor argument that sizes it to a channel set, and its pretrained weights.

Shipped weights live in :data:`WEIGHTS_DIR` (``hyperplex/common/models/weights/``, inside the wheel): a
model file written by :meth:`HyperplexModel.save` (its config travels in the file) plus a model card of the
same stem (``<stem>.md``: data, the command that made it, metrics). A preset names its file with
``@register_model(weights="<stem>.safetensors")``; ``create_model(name, pretrained=True)`` loads it offline.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import importlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from hyperplex.common.channels import ChannelLike, ChannelSet
from hyperplex.common.errors import DataNotFoundError, FileFormatError, InvalidParameterError, ModelCompatibilityError
from hyperplex.common.models._base import FORMAT_NAME, HyperplexModel, model_class

__all__ = [
    "INPUT_KINDS",
    "WEIGHTS_DIR",
    "PresetInfo",
    "create_model",
    "list_models",
    "load_model",
    "preset_info",
    "preset_summary",
    "register_model",
]

#: Folder of the shipped pretrained weights and their model cards (package data).
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

#: The inputs a preset can suit: marker names, wavelengths, RGB H&E.
INPUT_KINDS = ("microscopy", "hyperspectral", "he")
#: Constructor arguments that size a model to a channel set, and the value each takes.
_SIZERS: dict[str, Callable[[ChannelSet], Any]] = {
    "max_channels": len,
    "in_chans": len,
    "channel_vocab": lambda cs: list(cs.names),
}


@dataclass(frozen=True)
class PresetInfo:
    """What the registry knows about a preset besides how to build it.

    Args:
        name: Preset name (the function's name).
        input: The input it suits: ``"microscopy"``, ``"hyperspectral"``, ``"he"``, or None (unspecified).
        sized_by: Constructor argument that fits it to a channel set (``max_channels``, ``in_chans``,
            ``channel_vocab``), or None when it takes any channel set as built.
        weights: File name in :data:`WEIGHTS_DIR` (or an absolute path) of a saved hyperplex model file with
            its pretrained weights, or None (random init).
        summary: First line of the preset's docstring.
    """

    name: str
    input: str | None = None
    sized_by: str | None = None
    weights: str | None = None
    summary: str = ""

    @property
    def pretrained(self) -> bool:
        """True when the preset has pretrained weights."""
        return self.weights is not None

    @property
    def weights_path(self) -> Path | None:
        """The pretrained weights file (relative names resolve in :data:`WEIGHTS_DIR`), or None."""
        if self.weights is None:
            return None
        path = Path(self.weights)
        return path if path.is_absolute() else WEIGHTS_DIR / path

    def channel_overrides(self, channels: ChannelSet) -> dict[str, Any]:
        """Constructor overrides that size the preset to ``channels`` (empty when it needs none)."""
        if self.sized_by is None:
            return {}
        extra = {"in_chans": None} if self.sized_by == "channel_vocab" else {}
        return {self.sized_by: _SIZERS[self.sized_by](channels), **extra}

    def channel_note(self, channels: ChannelSet) -> str | None:
        """What sizing to ``channels`` means for the weights, or None."""
        if self.sized_by == "channel_vocab":
            return (
                f"channel vocabulary built from the {len(channels)} marker names; the embeddings of names the "
                "weights were not trained on are random and carry no meaning"
            )
        if self.sized_by is not None:
            return f"{self.sized_by} set to {len(channels)} for this image"
        return None


_PRESETS: dict[str, Callable[..., HyperplexModel]] = {}
_INFO: dict[str, PresetInfo] = {}
F = TypeVar("F", bound=Callable[..., HyperplexModel])


def _check_tags(name: str, input: str | None, sized_by: str | None) -> None:
    if input is not None and input not in INPUT_KINDS:
        raise InvalidParameterError(f"{name}: input={input!r} is not one of {', '.join(INPUT_KINDS)}.")
    if sized_by is not None and sized_by not in _SIZERS:
        raise InvalidParameterError(f"{name}: sized_by={sized_by!r} is not one of {', '.join(_SIZERS)}.")


def register_model(
    fn: F | None = None, *, input: str | None = None, sized_by: str | None = None, weights: str | None = None
) -> Any:
    """Register a preset function under its own name; use bare or with tags.

    ``@register_model`` or ``@register_model(input="microscopy", sized_by="max_channels")``.

    Args:
        fn: ``fn(**overrides) -> HyperplexModel``.
        input: The input the preset suits (one of :data:`INPUT_KINDS`), or None.
        sized_by: The constructor argument ``create_model(..., channels=cs)`` sets from ``cs``.
        weights: File name in :data:`WEIGHTS_DIR` of a saved model file with the preset's pretrained weights.

    Returns:
        A wrapper that also sets ``model.preset`` to the function name (or a decorator, without ``fn``).

    Raises:
        InvalidParameterError: If a preset of that name exists already, or a tag is unknown.
    """
    if fn is None:
        return functools.partial(register_model, input=input, sized_by=sized_by, weights=weights)
    name = fn.__name__
    if name in _PRESETS:
        raise InvalidParameterError(f"Model preset {name!r} is registered twice; preset names must be unique.")
    _check_tags(f"Preset {name!r}", input, sized_by)

    @functools.wraps(fn)
    def preset(**overrides: Any) -> HyperplexModel:
        model = fn(**overrides)
        model.preset = name
        return model

    doc = (fn.__doc__ or "").strip()
    _INFO[name] = PresetInfo(name, input, sized_by, weights, doc.splitlines()[0] if doc else "")
    _PRESETS[name] = preset
    return preset


def list_models(pattern: str = "*", *, pretrained: bool = False, input: str | None = None) -> list[str]:
    """Sorted names of the registered presets matching a shell-style ``pattern``.

    Args:
        pattern: Shell wildcards, e.g. ``"chadavit_*"``.
        pretrained: Only presets with pretrained weights (timm's convention).
        input: Only presets suited to this input (one of :data:`INPUT_KINDS`).

    Raises:
        InvalidParameterError: If ``input`` is not one of :data:`INPUT_KINDS`.
    """
    _check_tags("list_models", input, None)
    return sorted(
        n
        for n, info in _INFO.items()
        if fnmatch.fnmatchcase(n, pattern) and (info.pretrained or not pretrained) and input in (None, info.input)
    )


def _unknown(name: str) -> InvalidParameterError:
    close = difflib.get_close_matches(name, list(_PRESETS), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else " See `hyperplex models list`."
    return InvalidParameterError(f"Unknown model preset {name!r}.{hint}")


def preset_info(name: str) -> PresetInfo:
    """The registry's :class:`PresetInfo` of preset ``name``.

    Raises:
        InvalidParameterError: If no preset has that name (the message suggests close ones).
    """
    if name not in _INFO:
        raise _unknown(name)
    return _INFO[name]


def preset_summary(name: str) -> str:
    """First line of a preset's docstring ("" when unknown or undocumented)."""
    info = _INFO.get(name)
    return "" if info is None else info.summary


def create_model(
    name: str, pretrained: bool = False, *, channels: ChannelLike | None = None, **overrides: Any
) -> HyperplexModel:
    """Build a registered preset, with constructor arguments overridden by ``overrides``.

    Args:
        name: The preset.
        pretrained: Load the preset's shipped weights (offline, from :data:`WEIGHTS_DIR`); the architecture is
            the one saved with them, so ``overrides`` are refused.
        channels: The channels you will run on. Without ``pretrained`` the model is sized to them
            (``max_channels`` / ``in_chans`` = their count, ``channel_vocab`` = their names; see
            :attr:`PresetInfo.sized_by`): a vocabulary built from new names gives them random, meaningless
            embeddings until trained. Either way the model is then checked against them.
        **overrides: Constructor arguments; they win over the sizing from ``channels``.

    Raises:
        InvalidParameterError: If no preset has that name, or ``pretrained`` without weights or with overrides.
        DataNotFoundError: If the preset's weights file is missing.
        ChannelMismatchError: If the model cannot take ``channels`` (e.g. names for a wavelength model).
    """
    info = preset_info(name)
    cs = None if channels is None else ChannelSet.coerce(channels)
    if pretrained:
        model = _load_pretrained(info, overrides)
    else:
        sizing = info.channel_overrides(cs) if cs is not None else {}
        model = _construct(_PRESETS[name], {**sizing, **overrides}, f"create_model({name!r})", InvalidParameterError)
    if cs is not None:
        model.check_channels(cs)
    return model


def _load_pretrained(info: PresetInfo, overrides: dict[str, Any]) -> HyperplexModel:
    path = info.weights_path
    if path is None:
        shipped = ", ".join(list_models(pretrained=True)) or "none"
        raise InvalidParameterError(
            f"Model preset {info.name!r} has no pretrained weights "
            f"(`list_models(pretrained=True)` lists those that do: {shipped}). "
            "Use pretrained=False for random weights, or load_model(path) for a model you trained."
        )
    if overrides:
        raise InvalidParameterError(
            f"create_model({info.name!r}, pretrained=True) takes no constructor overrides "
            f"({', '.join(sorted(overrides))}): the architecture is the one saved with the weights. "
            "Use pretrained=False to build a changed architecture."
        )
    if not path.is_file():
        raise DataNotFoundError(f"Weights of model preset {info.name!r} not found at {path}; reinstall hyperplex.")
    model = load_model(path)
    model.preset = info.name
    return model


def _construct(build: Callable[..., HyperplexModel], kwargs: dict[str, Any], what: str,
               error: type[Exception]) -> HyperplexModel:  # fmt: skip
    """``build(**kwargs)``, a constructor's TypeError/ValueError/RuntimeError reported as ``error`` naming ``what``."""
    negative = [k for k, v in kwargs.items() if isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0]
    if negative:
        raise error(f"{what}: {', '.join(f'{k}={kwargs[k]!r}' for k in negative)}: sizes and rates cannot be negative.")
    try:
        return build(**kwargs)
    except (TypeError, ValueError, RuntimeError, OverflowError) as err:
        if isinstance(err, error):
            raise
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())[:300]
        raise error(f"{what}: the arguments ({given}) do not build the model: {type(err).__name__}: {err}") from err


def _read_metadata(path: Path) -> tuple[dict[str, str], int]:
    """The hyperplex metadata of a model file and how many values its tensors hold (header only, nothing loaded)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            stored = sum(_numel(handle.get_slice(k).get_shape()) for k in handle.keys())
    except Exception as err:  # safetensors raises its own error types
        raise FileFormatError(f"{path}: not a readable safetensors file ({err}).") from err
    if meta.get("format") != FORMAT_NAME:
        raise FileFormatError(f"{path}: safetensors file without hyperplex model metadata; was it written by save()?")
    missing = [k for k in ("class", "config") if k not in meta]
    if missing:
        raise FileFormatError(f"{path}: the model metadata lacks {missing}; the file was not written by save().")
    return meta, stored


def _numel(shape: list[int]) -> int:
    count = 1
    for n in shape:
        count *= int(n)
    return count


def _json_field(meta: dict[str, str], key: str, path: Path, default: str = "null") -> Any:
    try:
        return json.loads(meta.get(key, default))
    except ValueError as err:
        raise FileFormatError(f"{path}: the model metadata field {key!r} is not JSON ({err}).") from err


def _check_size(cls: type[HyperplexModel], config: dict[str, Any], stored: int, path: Path) -> None:
    """Build the architecture on the meta device (no memory) and compare its size with the file's tensors.

    Raises:
        ModelCompatibilityError: If the saved config describes a model larger than the weights in the file
            (a config edited or copied from another model), before anything is allocated.
    """
    import torch

    try:
        with torch.device("meta"):
            probe = cls(**config)
    except Exception:  # a constructor that needs real data: the real build below reports its own errors
        return
    declared = sum(t.numel() for t in probe.state_dict().values())
    if declared > stored:
        raise ModelCompatibilityError(
            f"{path}: the saved config describes {cls.__name__} with {declared:,} weight values but the file holds "
            f"{stored:,}; the config does not belong to these weights."
        )


def _resolve_class(key: str, path: Path) -> type[HyperplexModel]:
    import hyperplex.common.models  # noqa: F401  (registers the built-in families)

    cls = model_class(key)
    module = key.rsplit(".", 1)[0]
    if cls is None and module.startswith("hyperplex."):
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise ModelCompatibilityError(f"{path}: model class {key} cannot be imported ({err}).") from err
        cls = model_class(key)
    if cls is None:
        raise ModelCompatibilityError(f"{path}: unknown model class {key}; is this hyperplex version too old?")
    return cls


def load_model(
    path: str | os.PathLike[str], *, strict: bool = True, channels: ChannelLike | None = None
) -> HyperplexModel:
    """Rebuild a model written by :meth:`HyperplexModel.save` and load its weights.

    Args:
        path: The safetensors file.
        strict: Require the file's keys to match the model's exactly.
        channels: Optional channels you intend to run on; checked against the model now.

    Returns:
        The model in eval mode, with ``preset``, ``config`` and ``trained_channels`` restored.

    Raises:
        DataNotFoundError: If the file does not exist.
        FileFormatError: If it is not a hyperplex safetensors file.
        ModelCompatibilityError: If the weights do not fit the architecture or the channels don't fit the model.
    """
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"Model file {path} does not exist.")
    meta, stored = _read_metadata(path)
    cls = _resolve_class(meta["class"], path)
    config = _json_field(meta, "config", path)
    if not isinstance(config, dict):
        raise FileFormatError(f"{path}: the model metadata field 'config' is not a JSON object.")
    if strict:
        _check_size(cls, config, stored, path)
    model = _construct(cls, config, f"{path}: saved config of {cls.__name__}", ModelCompatibilityError)
    model.preset = _json_field(meta, "preset", path)
    saved_channels = _json_field(meta, "channels", path)
    model.trained_channels = None if saved_channels is None else ChannelSet.from_dict(saved_channels)
    model.load_state_dict_checked(load_file(str(path)), strict=strict, source=str(path))
    if channels is not None:
        model.check_channels(channels)
    return model.eval()
