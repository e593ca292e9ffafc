"""Channel vocabularies: map channel names to rows of a learned channel-embedding table."""

from __future__ import annotations

import torch

from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import ChannelMismatchError, InvalidParameterError

__all__ = ["channel_indices", "make_vocab"]


def make_vocab(channel_vocab: list[str] | None, in_chans: int | None) -> list[str]:
    """The vocabulary: the given names, or anonymous ``c0 .. c{in_chans-1}``.

    Raises:
        InvalidParameterError: If neither is given, both disagree, or names repeat.
    """
    if channel_vocab is None:
        if not in_chans or in_chans < 1:
            raise InvalidParameterError("Give `channel_vocab` (channel names) or a positive `in_chans`.")
        return [f"c{i}" for i in range(in_chans)]
    vocab = [str(n) for n in channel_vocab]
    if in_chans is not None and in_chans != len(vocab):
        raise InvalidParameterError(f"`in_chans`={in_chans} but `channel_vocab` has {len(vocab)} names.")
    if len(set(vocab)) != len(vocab):
        raise InvalidParameterError("`channel_vocab` has repeated names; each channel needs a unique name.")
    return vocab


def channel_indices(vocab: list[str], channels: ChannelSet, device: torch.device | None = None) -> torch.Tensor:
    """Rows of the embedding table for ``channels`` (looked up by name).

    Raises:
        ChannelMismatchError: If a channel is not in the vocabulary.
    """
    lookup = {name: i for i, name in enumerate(vocab)}
    missing = [n for n in channels.names if n not in lookup]
    if missing:
        shown = ", ".join(vocab[:8]) + (", ..." if len(vocab) > 8 else "")
        raise ChannelMismatchError(
            f"Channels {missing[:5]} are not in the model's channel vocabulary ({shown}); "
            "pass channels by the names the model was trained with."
        )
    return torch.tensor([lookup[n] for n in channels.names], dtype=torch.long, device=device)
