"""Preset registry (timm style) and loading of saved models.

A preset is a function decorated with :func:`register_model`; its name is the preset name, it takes
``**overrides`` and returns the model. ``create_model(name, **overrides)`` calls it and sets
``model.preset``.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import importlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hyperplex.common.channels import ChannelLike, ChannelSet
from hyperplex.common.errors import DataNotFoundError, FileFormatError, InvalidParameterError, ModelCompatibilityError
from hyperplex.common.models._base import FORMAT_NAME, HyperplexModel, model_class

__all__ = ["create_model", "list_models", "load_model", "preset_summary", "register_model"]

_PRESETS: dict[str, Callable[..., HyperplexModel]] = {}
F = TypeVar("F", bound=Callable[..., HyperplexModel])


def register_model(fn: F) -> F:
    """Register a preset function under its own name.

    Args:
        fn: ``fn(**overrides) -> HyperplexModel``.

    Returns:
        A wrapper that also sets ``model.preset`` to the function name.

    Raises:
        InvalidParameterError: If a preset of that name exists already.
    """
    name = fn.__name__
    if name in _PRESETS:
        raise InvalidParameterError(f"Model preset {name!r} is registered twice; preset names must be unique.")

    @functools.wraps(fn)
    def preset(**overrides: Any) -> HyperplexModel:
        model = fn(**overrides)
        model.preset = name
        return model

    _PRESETS[name] = preset
    return preset  # type: ignore[return-value]


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered presets matching a shell-style ``pattern``."""
    return sorted(n for n in _PRESETS if fnmatch.fnmatchcase(n, pattern))


def preset_summary(name: str) -> str:
    """First line of a preset's docstring ("" when unknown or undocumented)."""
    doc = (getattr(_PRESETS.get(name), "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""


def create_model(name: str, **overrides: Any) -> HyperplexModel:
    """Build a registered preset, with constructor arguments overridden by ``overrides``.

    Raises:
        InvalidParameterError: If no preset has that name (the message suggests close ones).
    """
    if name not in _PRESETS:
        close = difflib.get_close_matches(name, list(_PRESETS), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else " See `hyperplex models list`."
        raise InvalidParameterError(f"Unknown model preset {name!r}.{hint}")
    return _PRESETS[name](**overrides)


def _read_metadata(path: Path) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
    except Exception as err:  # safetensors raises its own error types
        raise FileFormatError(f"{path}: not a readable safetensors file ({err}).") from err
    if meta.get("format") != FORMAT_NAME:
        raise FileFormatError(f"{path}: safetensors file without hyperplex model metadata; was it written by save()?")
    return meta


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
    meta = _read_metadata(path)
    cls = _resolve_class(meta["class"], path)
    try:
        model = cls(**json.loads(meta["config"]))
    except TypeError as err:
        raise ModelCompatibilityError(f"{path}: saved config does not fit {cls.__name__} ({err}).") from err
    model.preset = json.loads(meta.get("preset", "null"))
    saved_channels = json.loads(meta.get("channels", "null"))
    model.trained_channels = None if saved_channels is None else ChannelSet.from_dict(saved_channels)
    model.load_state_dict_checked(load_file(str(path)), strict=strict, source=str(path))
    if channels is not None:
        model.check_channels(channels)
    return model.eval()
