"""The base class of every hyperplex model: config capture, channel coercion, safetensors save.

Subclasses take plain JSON-serialisable constructor arguments. :class:`HyperplexModel` records them
automatically in ``self.config`` (the bound arguments of the most-derived ``__init__``), so
``type(model)(**model.config)`` rebuilds the architecture; :func:`hyperplex.common.models.load_model`
relies on that.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from hyperplex.common._version import __version__
from hyperplex.common.atomic import atomic_path
from hyperplex.common.channels import ChannelLike, ChannelSet
from hyperplex.common.errors import InvalidParameterError, ModelCompatibilityError

__all__ = ["FORMAT_NAME", "HyperplexModel", "model_class", "model_classes"]

#: ``format`` entry of the safetensors metadata written by :meth:`HyperplexModel.save`.
FORMAT_NAME = "hyperplex-model"

_CLASSES: dict[str, type[HyperplexModel]] = {}


def _class_key(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def model_classes() -> dict[str, type[HyperplexModel]]:
    """All :class:`HyperplexModel` subclasses defined so far, keyed by ``module.QualName``."""
    return dict(_CLASSES)


def model_class(key: str) -> type[HyperplexModel] | None:
    """The subclass registered under ``module.QualName``, or None."""
    return _CLASSES.get(key)


def _jsonable(value: Any, where: str) -> Any:
    """Normalise a config value to JSON types (tuples become lists), or raise."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as err:
        raise InvalidParameterError(
            f"Model argument `{where}` = {value!r} is not JSON-serialisable; model constructors must take "
            "plain values (numbers, strings, lists, dicts) so the model can be saved and rebuilt."
        ) from err


def _bound_config(signature: inspect.Signature, args: tuple, kwargs: dict) -> dict[str, Any]:
    bound = signature.bind(None, *args, **kwargs)
    bound.apply_defaults()
    config: dict[str, Any] = {}
    for name, value in list(bound.arguments.items())[1:]:  # skip self
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            config.update({k: _jsonable(v, k) for k, v in value.items()})
        elif kind is not inspect.Parameter.VAR_POSITIONAL:
            config[name] = _jsonable(value, name)
    return config


def _defining_class(cls: type) -> type:
    """The first class in the MRO that defines ``__init__`` (whose arguments make the config)."""
    return next(k for k in cls.__mro__ if "__init__" in k.__dict__)


def _capture_config(cls: type, init: Callable[..., None]) -> Callable[..., None]:
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapped(self: HyperplexModel, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if _defining_class(type(self)) is cls:  # only the most-derived constructor defines the config
            self.config = _bound_config(signature, args, kwargs)

    return wrapped


class HyperplexModel(nn.Module):
    """Base class of every model in :mod:`hyperplex.common.models`.

    Contract: ``forward(x, channels, channel_mask=None)`` with ``x`` a (B, C, H, W) float tensor,
    ``channels`` a :class:`ChannelSet` or a list of wavelengths in nm (floats) or of names
    (strings), one per channel of ``x``; ``channel_mask`` an optional (B, C) bool tensor, True where
    a sample really has that channel (a zero-padded batch of mixed channel sets). Backbones also
    have ``forward_features(x, channels, ...)``. ``num_tokens(C, img_size)`` reports the token count.

    Attributes:
        preset: Name of the registered preset that built the model, if any.
        config: Constructor arguments (JSON-serialisable); ``type(self)(**config)`` rebuilds it.
        trained_channels: The channel set the weights were trained on, if known; saved with them.
        channel_adaptive: Class attribute: True when the model accepts channel sets other than the
            trained one (subsets, new wavelengths); False for fixed-band models.
    """

    channel_adaptive: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _capture_config(cls, cls.__dict__["__init__"])  # type: ignore[method-assign]
        _CLASSES[_class_key(cls)] = cls

    def __init__(self) -> None:
        super().__init__()
        self.preset: str | None = None
        self.config: dict[str, Any] = {}
        self.trained_channels: ChannelSet | None = None

    # ------------------------------------------------------------------ channels
    def _channels(self, channels: ChannelLike, x: torch.Tensor) -> ChannelSet:
        """Coerce ``channels`` to a :class:`ChannelSet` with one entry per channel of ``x`` (B, C, H, W)."""
        return ChannelSet.coerce(channels, count=x.shape[1])

    def check_channels(self, channels: ChannelLike) -> ChannelSet:
        """Check that the model can run on ``channels``; return them as a ChannelSet.

        The base rule: a non channel-adaptive model with known ``trained_channels`` needs exactly
        those channels. Subclasses add their own rules (a channel vocabulary, wavelengths).

        Raises:
            ModelCompatibilityError: If the model cannot use these channels.
        """
        cs = ChannelSet.coerce(channels)
        trained = self.trained_channels
        if not self.channel_adaptive and trained is not None and cs != trained:
            raise ModelCompatibilityError(
                f"{type(self).__name__} was trained on {trained!r} and cannot take {cs!r}; "
                "select the trained bands from your data first."
            )
        return cs

    def num_tokens(self, num_channels: int, img_size: int | tuple[int, int]) -> int | None:
        """Tokens the backbone attends over for one image (None when not token-based)."""
        return None

    # ------------------------------------------------------------------ persistence
    def metadata(self) -> dict[str, str]:
        """The safetensors metadata :meth:`save` writes (all values strings)."""
        channels = None if self.trained_channels is None else self.trained_channels.to_dict()
        return {
            "format": FORMAT_NAME,
            "class": _class_key(type(self)),
            "preset": json.dumps(self.preset),
            "config": json.dumps(self.config),
            "channels": json.dumps(channels),
            "hyperplex_version": __version__,
        }

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write weights and metadata (preset, class, config, trained channels) to one safetensors file.

        The file is written atomically. :func:`hyperplex.common.models.load_model` reads it back.

        Args:
            path: Destination, conventionally ``*.safetensors``.
        """
        from safetensors.torch import save_file

        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in self.state_dict().items()}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=self.metadata())

    def load_state_dict_checked(self, state_dict: dict[str, torch.Tensor], *, strict: bool = True, source: str) -> None:
        """``load_state_dict`` that reports missing, unexpected and mis-shaped keys as one clear error.

        Args:
            state_dict: Weights in this model's key layout.
            strict: Require exactly the model's keys.
            source: What the weights came from (a file name), for the message.

        Raises:
            ModelCompatibilityError: On any shape mismatch, or on missing/unexpected keys when strict.
        """
        own = self.state_dict()
        shapes = [
            f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
            for k, v in state_dict.items()
            if k in own and v.shape != own[k].shape
        ]
        missing = sorted(set(own) - set(state_dict))
        unexpected = sorted(set(state_dict) - set(own))
        problems = shapes + ([f"missing {missing[:8]}"] if strict and missing else [])
        problems += [f"unexpected {unexpected[:8]}"] if strict and unexpected else []
        if problems:
            raise ModelCompatibilityError(
                f"{source}: weights do not fit {type(self).__name__}({self.preset or 'custom'}): "
                + "; ".join(problems[:10])
                + ". Rebuild the model with the configuration the weights were trained with."
            )
        self.load_state_dict({k: v for k, v in state_dict.items() if k in own}, strict=False)
