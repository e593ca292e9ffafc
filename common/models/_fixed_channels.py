"""Bases for models built for one fixed set of input channels (HyperspectralViTs, MIPHEI).

These models have a first layer of shape ``(..., in_chans, ...)``: they run only on exactly
``in_chans`` channels, in the trained order. When ``trained_channels`` is known, the channels given
at call time are checked against it (wavelengths within ``wavelength_tolerance_nm``, else names),
so a band set that differs from the trained one fails loudly instead of giving wrong maps.
:class:`FixedChannelSegmenter` adds the encoder / decoder / classifier split of the segmentation
families, whose ``feature_map`` is the decoder's fused map before the classifier.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from hyperplex.common.channels import ChannelLike, ChannelSet
from hyperplex.common.errors import ChannelMismatchError, InvalidParameterError
from hyperplex.common.models._base import HyperplexModel

__all__ = ["FixedChannelModel", "FixedChannelSegmenter"]


class FixedChannelModel(HyperplexModel):
    """A :class:`HyperplexModel` whose input channel count is fixed at construction.

    Subclasses set ``self.in_chans`` in their constructor and call :meth:`check_input` at the top
    of ``forward``.

    Attributes:
        in_chans: Number of input channels the first layer expects.
        wavelength_tolerance_nm: Largest per-band centre difference accepted against
            ``trained_channels`` (nm).
    """

    channel_adaptive: ClassVar[bool] = False
    wavelength_tolerance_nm: ClassVar[float] = 1.0
    in_chans: int

    def _label(self) -> str:
        return f"{type(self).__name__}({self.preset or 'custom'})"

    def set_trained_channels(self, channels: ChannelLike) -> ChannelSet:
        """Record the channels the weights are (to be) trained on; saved with :meth:`save`.

        Args:
            channels: ChannelSet, wavelengths in nm, or names; one per input channel.

        Returns:
            The channel set.

        Raises:
            ChannelMismatchError: If the count differs from ``in_chans``.
        """
        cs = ChannelSet.coerce(channels)
        if len(cs) != self.in_chans:
            raise ChannelMismatchError(f"{self._label()} takes {self.in_chans} channels; got {len(cs)} to record.")
        self.trained_channels = cs
        return cs

    def check_channels(self, channels: ChannelLike) -> ChannelSet:
        """Check ``channels`` against ``in_chans`` and ``trained_channels``; return them as a ChannelSet.

        Raises:
            ChannelMismatchError: On a different count, or bands/names that differ from the trained ones.
        """
        cs = ChannelSet.coerce(channels)
        self._check_count(len(cs))
        trained = self.trained_channels
        if trained is not None:
            self._check_identity(cs, trained)
        return cs

    def _check_count(self, count: int) -> None:
        if count != self.in_chans:
            raise ChannelMismatchError(
                f"{self._label()} was built for {self.in_chans} input channels but got {count}; select the "
                f"model's bands from your data (e.g. ChannelSet.window / indices), or build the model with "
                f"in_chans={count} and train it on those channels."
            )

    def _check_identity(self, cs: ChannelSet, trained: ChannelSet) -> None:
        if trained.is_spectral:
            if not cs.is_spectral:
                raise ChannelMismatchError(
                    f"{self._label()} was trained on bands {trained!r}; pass the input's wavelengths (nm), not "
                    "only names, so they can be checked."
                )
            diff = np.abs(cs.wavelengths - trained.wavelengths)
            worst = int(np.argmax(diff))
            if diff[worst] > self.wavelength_tolerance_nm:
                raise ChannelMismatchError(
                    f"{self._label()}: band {worst} is at {cs.wavelengths[worst]:.1f} nm but the model was trained "
                    f"with {trained.wavelengths[worst]:.1f} nm (tolerance {self.wavelength_tolerance_nm} nm); "
                    "resample or select your bands to the trained set (model.trained_channels)."
                )
        elif cs.names != trained.names:
            bad = next(i for i, (a, b) in enumerate(zip(cs.names, trained.names)) if a != b)
            raise ChannelMismatchError(
                f"{self._label()}: channel {bad} is {cs.names[bad]!r} but the model was trained with "
                f"{trained.names[bad]!r}; reorder or select channels to match model.trained_channels."
            )

    def check_input(
        self, x: torch.Tensor, channels: ChannelLike | None, channel_mask: torch.Tensor | None = None
    ) -> ChannelSet | None:
        """Validate a (B, C, H, W) batch and its channels at the start of ``forward``.

        Args:
            x: The batch.
            channels: Its channels (ChannelSet, wavelengths in nm, names), or None to check the count only.
            channel_mask: Must be None: these models need the same channels for every sample.

        Returns:
            The channels as a ChannelSet, or None when not given.

        Raises:
            InvalidParameterError: If ``x`` is not 4-D or a channel mask is given.
            ChannelMismatchError: If the channels do not fit the model.
        """
        if x.ndim != 4:
            raise InvalidParameterError(f"{self._label()} expects a (B, C, H, W) batch; got shape {tuple(x.shape)}.")
        if channel_mask is not None:
            raise InvalidParameterError(
                f"{self._label()} has a fixed band set and cannot take a per-sample channel_mask; "
                "batch samples with the same channels and pass channel_mask=None."
            )
        self._check_count(x.shape[1])
        return None if channels is None else self.check_channels(self._channels(channels, x))


class FixedChannelSegmenter(FixedChannelModel):
    """A fixed-channel segmentation model: encoder stage maps, a decoder fusing them, a classifier.

    Subclasses implement :meth:`encode`, :meth:`decode_features` and :meth:`classify`.
    ``forward_features`` is the encoder's list of maps, ``feature_map`` the fused decoder map before
    the classifier, ``forward`` the logits resized to the input.
    """

    @abc.abstractmethod
    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps of a checked (B, in_chans, H, W) batch (see the subclass)."""

    @abc.abstractmethod
    def decode_features(self, features: list[torch.Tensor]) -> torch.Tensor:
        """The decoder's fused map (B, feature_dim, H / feature_stride, W / feature_stride) from :meth:`encode`."""

    @abc.abstractmethod
    def classify(self, fused: torch.Tensor) -> torch.Tensor:
        """Logits (B, num_classes, h, w) from :meth:`decode_features`' map, at the head's own resolution."""

    def decode(self, features: list[torch.Tensor]) -> torch.Tensor:
        """Logits from :meth:`encode`'s maps, at the head's own resolution."""
        return self.classify(self.decode_features(features))

    def forward_features(
        self, x: torch.Tensor, channels: ChannelLike | None = None, channel_mask: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """Encoder feature maps (see :meth:`encode`).

        Raises:
            ChannelMismatchError: If the channels do not fit the model.
        """
        self.check_input(x, channels, channel_mask)
        return self.encode(x)

    def feature_map(
        self, x: torch.Tensor, channels: ChannelLike | None = None, channel_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Fused decoder features before the classifier (see :meth:`decode_features`).

        Raises:
            ChannelMismatchError: If the channels do not fit the model.
        """
        return self.decode_features(self.forward_features(x, channels, channel_mask))

    def forward(
        self, x: torch.Tensor, channels: ChannelLike | None = None, channel_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Segment ``x`` (B, in_chans, H, W) into logits (B, num_classes, H, W).

        Args:
            x: Input batch.
            channels: The batch's channels (ChannelSet, wavelengths in nm, names), or None.
            channel_mask: Not supported (must be None).

        Raises:
            ChannelMismatchError: If the channels do not fit the model.
        """
        logits = self.classify(self.feature_map(x, channels, channel_mask))
        if logits.shape[-2:] != x.shape[-2:]:
            logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return logits
