"""The base class of every hyperplex model: the model contract, channel coercion, safetensors save.

Subclasses take plain JSON-serialisable constructor arguments. :class:`HyperplexModel` records them
automatically in ``self.config`` (the bound arguments of the most-derived ``__init__``), so
``type(model)(**model.config)`` rebuilds the architecture; :func:`hyperplex.common.models.load_model`
relies on that.
"""

from __future__ import annotations

import abc
import functools
import json
import os
import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from hyperplex.common._version import __version__
from hyperplex.common.atomic import atomic_path
from hyperplex.common.channels import ChannelLike, ChannelSet
from hyperplex.common.errors import ModelCompatibilityError
from hyperplex.common.models._config import capture_config

__all__ = ["FORMAT_NAME", "EncoderFeatures", "HyperplexModel", "PatchFeatures", "model_class", "model_classes"]

#: ``format`` entry of the safetensors metadata written by :meth:`HyperplexModel.save`.
FORMAT_NAME = "hyperplex-model"

_CLASSES: dict[str, type[HyperplexModel]] = {}


def finite_input(method: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``method(self, x, ...)`` so that NaN/inf in ``x`` are replaced by 0 with a warning.

    One non-finite pixel would otherwise spread through attention and normalisation to the whole output.
    """

    @functools.wraps(method)
    def wrapped(self: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(x, torch.Tensor) and x.is_floating_point() and not bool(torch.isfinite(x).all()):
            bad = int((~torch.isfinite(x)).sum())
            message = f"{type(self).__name__}: {bad} non-finite input value(s) (NaN or inf) replaced by 0"
            warnings.warn(f"{message}; outputs near them are unreliable. Mask or fill them first.", stacklevel=2)
            x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        return method(self, x, *args, **kwargs)

    wrapped._finite_guard = True  # type: ignore[attr-defined]
    return wrapped


def _class_key(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def model_classes() -> dict[str, type[HyperplexModel]]:
    """All :class:`HyperplexModel` subclasses defined so far, keyed by ``module.QualName``."""
    return dict(_CLASSES)


def model_class(key: str) -> type[HyperplexModel] | None:
    """The subclass registered under ``module.QualName``, or None."""
    return _CLASSES.get(key)


class HyperplexModel(nn.Module, metaclass=abc.ABCMeta):
    """Base class of every model in :mod:`hyperplex.common.models`: the model contract.

    Inputs: ``x`` a (B, C, H, W) float tensor; ``channels`` a :class:`ChannelSet` or a list of
    wavelengths in nm (floats) or of names (strings), one per channel of ``x`` (fixed-band models
    also take None); ``channel_mask`` an optional (B, C) bool tensor, True where a sample really has
    that channel (a zero-padded batch of mixed channel sets; models that cannot mask raise).

    Every family implements:

    - ``forward(x, channels, channel_mask=None)``: the family's output (an embedding or class logits
      (B, K); dense logits or predictions (B, K, H, W); Hyper-MAE's loss dict). By default
      ``forward_head(forward_features(...))``.
    - ``forward_features(x, channels, channel_mask=None)``: the family's native features (tokens,
      token grid, a list of stage maps...; documented per family); input of ``forward_head``.
    - ``feature_map(x, channels, channel_mask=None)``: dense features (B, feature_dim, h, w) on the
      model's own grid, ``h = H / feature_stride`` for sides that are multiples of ``input_multiple``.
      This is the one dense output every tool (tiled inference, embeddings, probes) relies on.
    - ``feature_stride`` and ``feature_dim``: pixels per ``feature_map`` cell and its channel count.

    and may override ``input_multiple`` (image sides must be multiples of it; default
    ``feature_stride``), ``fixed_input_size`` (the only accepted side, or None), ``normalize`` (the
    input statistics the weights expect; identity), ``output_channels`` (names of dense outputs),
    ``check_channels`` and ``num_tokens``. Persistence (``save``, ``metadata``, loading) is shared.

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
            cls.__init__ = capture_config(cls, cls.__dict__["__init__"])  # type: ignore[method-assign]
        for name in ("forward", "feature_map"):
            if name in cls.__dict__ and not getattr(cls.__dict__[name], "_finite_guard", False):
                setattr(cls, name, finite_input(cls.__dict__[name]))
        _CLASSES[_class_key(cls)] = cls

    def __init__(self) -> None:
        super().__init__()
        self.preset: str | None = None
        self.config: dict[str, Any] = {}
        self.trained_channels: ChannelSet | None = None

    # ------------------------------------------------------------------ contract
    @finite_input
    def forward(self, x: torch.Tensor, channels: ChannelLike, channel_mask: torch.Tensor | None = None, **options: Any):
        """The family's output: ``forward_head(forward_features(x, channels, channel_mask, **options))``."""
        return self.forward_head(self.forward_features(x, channels, channel_mask, **options))

    @abc.abstractmethod
    def forward_features(self, x: torch.Tensor, channels: ChannelLike, channel_mask: torch.Tensor | None = None) -> Any:
        """The family's native features of a (B, C, H, W) batch (layout documented per family)."""

    def forward_head(self, features: Any) -> torch.Tensor:
        """Map ``forward_features``' output to the model output (families without a head override ``forward``)."""
        raise NotImplementedError(f"{type(self).__name__} has no forward_head; it defines forward() directly.")

    @abc.abstractmethod
    def feature_map(
        self, x: torch.Tensor, channels: ChannelLike, channel_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Dense features (B, feature_dim, H / feature_stride, W / feature_stride) of a (B, C, H, W) batch."""

    @property
    @abc.abstractmethod
    def feature_stride(self) -> int:
        """Pixels per :meth:`feature_map` cell (along rows and columns)."""

    @property
    @abc.abstractmethod
    def feature_dim(self) -> int:
        """Channels of :meth:`feature_map`."""

    @property
    def input_multiple(self) -> int:
        """Image sides must be multiples of this (tiled inference pads to it); default ``feature_stride``."""
        return self.feature_stride

    @property
    def fixed_input_size(self) -> int | None:
        """The only image side the model accepts (e.g. a timm encoder's ``img_size``), or None for any."""
        return None

    @property
    def output_channels(self) -> ChannelSet | None:
        """Names of the channels of a dense ``forward`` output (e.g. predicted markers), or None."""
        return None

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Bring inputs to the statistics the weights expect; identity unless the family defines them."""
        return x

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


class PatchFeatures:
    """Mixin for ViTs with one feature cell per patch: ``feature_stride = patch_size``, ``feature_dim = embed_dim``.

    Put it before :class:`HyperplexModel` in the bases; the class sets ``patch_size`` and ``embed_dim``.
    """

    patch_size: int
    embed_dim: int

    @property
    def feature_stride(self) -> int:
        """One feature cell per patch."""
        return self.patch_size

    @property
    def feature_dim(self) -> int:
        """Token width."""
        return self.embed_dim


class EncoderFeatures:
    """Mixin for a model wrapping an ``encoder`` (pretraining heads): its feature grid is the encoder's.

    Put it before :class:`HyperplexModel` in the bases; the class sets ``encoder`` (a :class:`HyperplexModel`).
    """

    encoder: HyperplexModel

    @property
    def feature_stride(self) -> int:
        """The encoder's pixels per feature cell."""
        return self.encoder.feature_stride

    @property
    def feature_dim(self) -> int:
        """The encoder's feature width."""
        return self.encoder.feature_dim
