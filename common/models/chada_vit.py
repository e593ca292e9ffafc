"""ChAda-ViT: per-channel tokens, attention across all channels' tokens, mixed channel counts.

Bourriez et al., "ChAda-ViT: Channel Adaptive Attention for Joint Representation Learning of
Heterogeneous Microscopy Images", CVPR 2024, https://arxiv.org/abs/2311.15264 (official code:
nicoboou/chadavit).

Every channel of every image is tokenised by one shared ``Conv2d(1, D, p, p)``; the tokens of all
channels (plus a CLS token) attend to each other. Images with different channel counts share a
batch by zero padding on the channel axis plus a channel mask (True = channel present) that becomes
a key-padding mask, so padded slots never influence real tokens. As in the official model the
channel embedding is indexed by the channel's slot (its position in the image), unless a
``channel_vocab`` is given, in which case it is indexed by channel name.

The encoder block reproduces the official post-norm layer exactly, including its re-use of
``norm1`` both before attention and after the residual (see :class:`ChAdaBlock`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from hyperplex.common.channels import ChannelLike, ChannelSet
from hyperplex.common.errors import ChannelMismatchError, InvalidParameterError
from hyperplex.common.layers import Attention, Mlp, PatchEmbedPerChannel, drop_path_rates, trunc_normal_init
from hyperplex.common.models._channel_tokens import ChannelTokenModel
from hyperplex.common.models._official_pos import check_pos_embed_interp, official_patch_pos
from hyperplex.common.models._registry import register_model
from hyperplex.common.models._vocab import channel_indices, make_vocab

__all__ = [
    "ChAdaBlock",
    "ChAdaViT",
    "chadavit_from_official",
    "convert_chadavit_state_dict",
    "pad_channel_batch",
    "unstack_channels",
]

#: Slots the official forward pads every image to (``channel_aware_tokenization(..., max_channels=10)``).
_OFFICIAL_SLOTS = 10


class ChAdaBlock(nn.Module):
    """The official ChAda-ViT encoder layer (torch ``TransformerEncoderLayer``, post-norm variant).

    ``x = norm1(x + attn(norm1(x)))`` then ``x = norm2(x + ffn(x))``; ReLU feed-forward.

    Args:
        dim: Token width.
        num_heads: Attention heads.
        ffn_dim: Feed-forward hidden size (2048 in the official model, whatever ``dim``).
        dropout: Dropout in attention and feed-forward (the official model passes its
            stochastic-depth schedule here).
        norm_eps: LayerNorm epsilon (1e-5, torch's default, in the official model).
    """

    def __init__(self, dim: int, num_heads: int, ffn_dim: int = 2048, dropout: float = 0.0, norm_eps: float = 1e-5):
        super().__init__()
        self.attn = Attention(dim, num_heads, qkv_bias=True, attn_drop=dropout)
        self.drop1 = nn.Dropout(dropout)
        self.mlp = Mlp(dim, ffn_dim, act="relu", drop=0.0)
        self.mlp.drop1 = nn.Dropout(dropout)
        self.drop2 = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Apply the layer to tokens (B, L, D) with an optional SDPA mask."""
        x = self.norm1(x + self.drop1(self.attn(self.norm1(x), attn_mask=attn_mask)))
        return self.norm2(x + self.drop2(self.mlp(x)))


class ChAdaViT(ChannelTokenModel):
    """Channel Adaptive Vision Transformer.

    Args:
        max_channels: Channel slots (size of the slot embedding table; 10 officially).
        channel_vocab: Optional channel names; when given the channel embedding is looked up by
            name instead of by slot.
        img_size: Training image size (positional embeddings are resampled for other sizes).
        patch_size: Patch side in pixels.
        embed_dim: Token width (192 officially).
        depth: Number of encoder layers.
        num_heads: Attention heads (2 in the official factory, 12 in its notebook).
        ffn_dim: Feed-forward hidden size (2048 officially).
        drop_rate: Dropout on the embedded tokens.
        drop_path_rate: Largest per-layer dropout (linear from 0, as the official schedule).
        num_classes: Linear head on the CLS token (0: return the CLS embedding).
        norm_eps: Epsilon of the final LayerNorm (block norms use 1e-5 as torch); 1e-6 as the official
            ``chada_vit`` factory (the official class alone would default to torch's 1e-5).
        pos_embed_interp: ``"exact"`` (default): a bicubic resize to the patch grid at other sizes;
            ``"official"``: DINO's ``scale_factor`` resize as the official ``add_pos_encoding_per_channel``.
        official_slots: Reproduce the official slot handling: its forward pads every image to 10 slots
            and adds the slot embedding only when ``max_channels`` is 10, so a model with another
            ``max_channels`` uses no channel embedding at all (and takes at most 10 channels).
            :func:`chadavit_from_official` sets it; no effect with a ``channel_vocab``.
    """

    def __init__(
        self,
        max_channels: int = 10,
        channel_vocab: list[str] | None = None,
        img_size: int = 224,
        patch_size: int = 16,
        embed_dim: int = 192,
        depth: int = 12,
        num_heads: int = 2,
        ffn_dim: int = 2048,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        num_classes: int = 0,
        norm_eps: float = 1e-6,
        pos_embed_interp: str = "exact",
        official_slots: bool = False,
    ):
        super().__init__()
        self.pos_embed_interp = check_pos_embed_interp(pos_embed_interp)
        self.official_slots = official_slots
        self.channel_vocab = None if channel_vocab is None else make_vocab(channel_vocab, None)
        self.max_channels = max_channels if channel_vocab is None else len(self.channel_vocab)
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.grid = (img_size // patch_size, img_size // patch_size)
        self.patch_embed = PatchEmbedPerChannel(embed_dim, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.channel_token = nn.Parameter(torch.zeros(self.max_channels, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid[0] * self.grid[1], embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        rates = drop_path_rates(drop_path_rate, depth)
        self.blocks = nn.ModuleList(ChAdaBlock(embed_dim, num_heads, ffn_dim, r) for r in rates)
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Official initialisation: truncated normal (std 0.02) embeddings and linear weights."""
        trunc_normal_init(self.modules(), (self.pos_embed, self.cls_token, self.channel_token))

    def check_channels(self, channels: ChannelLike) -> ChannelSet:
        """Check the channels fit the slots (or the vocabulary); return the ChannelSet.

        Raises:
            ChannelMismatchError: If there are more channels than slots, or unknown names.
        """
        cs = ChannelSet.coerce(channels)
        self._embedding_rows(cs, torch.device("cpu"))
        return cs

    def _embedding_rows(self, cs: ChannelSet, device: torch.device) -> torch.Tensor | None:
        """Rows of ``channel_token`` for these channels, or None where the official forward adds none."""
        if self.channel_vocab is not None:
            return channel_indices(self.channel_vocab, cs, device)
        slots = _OFFICIAL_SLOTS if self.official_slots else self.max_channels
        if len(cs) > slots:
            fix = "the official forward pads to 10 slots" if self.official_slots else "build the model with a larger"
            raise ChannelMismatchError(
                f"ChAda-ViT has {slots} channel slots but got {len(cs)} channels; "
                + (f"{fix}." if self.official_slots else f"{fix} `max_channels`.")
            )
        if self.official_slots and self.max_channels != _OFFICIAL_SLOTS:
            return None
        return torch.arange(len(cs), device=device)

    def _patch_pos(self, image_size: tuple[int, int]) -> torch.Tensor:
        """Patch positional embeddings (1, N, D) of one channel at ``image_size`` pixels."""
        grid = (image_size[0] // self.patch_size, image_size[1] // self.patch_size)
        if self.pos_embed_interp == "exact":
            return self._pos_embed(grid)[:, 1:]
        return official_patch_pos(self.pos_embed, image_size, self.patch_size, grid[0] * grid[1])

    def embed(self, x: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        """Tokens (B, 1 + C * N, D): CLS, then channel-major patch tokens with slot and position embeddings.

        ``rows`` None: no slot embedding (the official forward with ``max_channels`` other than 10).
        """
        tokens = self.patch_embed(x) + self._patch_pos(tuple(x.shape[-2:]))[:, None]  # (B, C, N, D)
        if rows is not None:
            tokens = tokens + self.channel_token[rows][None, :, None, :]
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)
        return self.pos_drop(torch.cat([cls, tokens.flatten(1, 2)], dim=1))

    def tokenize(
        self, x: torch.Tensor, channels: ChannelSet, channel_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Tokens with slot (or vocabulary) channel embeddings; the mask is passed through."""
        return self.embed(x, self._embedding_rows(channels, x.device)), channel_mask


def pad_channel_batch(images: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (C_i, H, W) images with different channel counts into a padded batch.

    Args:
        images: Tensors of equal spatial size.

    Returns:
        ``(x, channel_mask)``: x (B, C_max, H, W) zero padded at the end of the channel axis;
        channel_mask (B, C_max) bool, True for real channels.

    Raises:
        InvalidParameterError: If the list is empty or the spatial sizes differ.
    """
    if not images:
        raise InvalidParameterError("pad_channel_batch needs at least one image.")
    if len({tuple(im.shape[-2:]) for im in images}) != 1:
        raise InvalidParameterError("pad_channel_batch: all images must have the same height and width.")
    c_max = max(im.shape[0] for im in images)
    x = images[0].new_zeros((len(images), c_max, *images[0].shape[-2:]))
    mask = torch.zeros(len(images), c_max, dtype=torch.bool, device=x.device)
    for i, im in enumerate(images):
        x[i, : im.shape[0]] = im
        mask[i, : im.shape[0]] = True
    return x, mask


def unstack_channels(x_flat: torch.Tensor, counts: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Convert the official input format ``(sum C_i, 1, H, W)`` + channel counts to a padded batch.

    Returns:
        ``(x, channel_mask)`` as :func:`pad_channel_batch`.
    """
    return pad_channel_batch(list(torch.split(x_flat[:, 0], list(counts), dim=0)))


def convert_chadavit_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map an official nicoboou/chadavit ``ChAdaViT`` state dict to :class:`ChAdaViT` keys.

    Mapping:

    - ``token_learner.proj.{weight,bias}`` -> ``patch_embed.proj.{weight,bias}``.
    - ``channel_token`` (1, max_channels, 1, D) -> ``channel_token`` (max_channels, D).
    - ``pos_embed`` (1, 1, N + 1, D) -> ``pos_embed`` (1, N + 1, D); ``cls_token``, ``norm``, ``head`` kept.
    - ``blocks.<i>.self_attn.in_proj_{weight,bias}`` -> ``blocks.<i>.attn.qkv.{weight,bias}``
      (same q, k, v stacking); ``self_attn.out_proj`` -> ``attn.proj``.
    - ``blocks.<i>.linear1`` / ``linear2`` -> ``blocks.<i>.mlp.fc1`` / ``mlp.fc2``; ``norm1``, ``norm2`` kept.

    ``module.``, ``backbone.`` and ``encoder.`` prefixes (solo-learn checkpoints) are stripped. The
    head count is not stored in the weights: build the model with the one used in training.
    """
    renames = {
        "token_learner.proj.": "patch_embed.proj.",
        ".self_attn.in_proj_weight": ".attn.qkv.weight",
        ".self_attn.in_proj_bias": ".attn.qkv.bias",
        ".self_attn.out_proj.": ".attn.proj.",
        ".linear1.": ".mlp.fc1.",
        ".linear2.": ".mlp.fc2.",
    }
    out = {}
    for key, value in state_dict.items():
        for prefix in ("module.", "backbone.", "encoder."):
            key = key[len(prefix) :] if key.startswith(prefix) else key
        for old, new in renames.items():
            key = key.replace(old, new)
        if key == "channel_token":
            value = value[0, :, 0]
        elif key == "pos_embed" and value.ndim == 4:
            value = value[0]
        out[key] = value.contiguous()
    return out


def chadavit_from_official(state_dict: dict[str, torch.Tensor], **overrides: Any) -> ChAdaViT:
    """A :class:`ChAdaViT` that computes what the official nicoboou/chadavit model does with these weights.

    The architecture is read from the weights (width, depth, patch size, training size, slots,
    feed-forward size, head); the rest is the official ``chada_vit`` factory's: 2 heads, final LayerNorm
    eps 1e-6, with ``pos_embed_interp="official"`` and ``official_slots=True``. The weights are converted
    with :func:`convert_chadavit_state_dict` and loaded strictly. The official input format
    ``(sum C_i, 1, H, W)`` plus channel counts becomes a padded batch with :func:`unstack_channels`.

    Args:
        state_dict: Official weights (``ChAdaViT`` keys, optionally solo-learn prefixed).
        **overrides: ChAdaViT arguments that win over the inferred ones (``num_heads`` of the checkpoint:
            the factory uses 2, the official notebook 12).

    Raises:
        ModelCompatibilityError: If the weights do not fit the model built.
    """
    sd = convert_chadavit_state_dict(state_dict)
    patch = sd["patch_embed.proj.weight"].shape[-1]
    config: dict[str, Any] = dict(
        max_channels=sd["channel_token"].shape[0],
        img_size=math.isqrt(sd["pos_embed"].shape[1] - 1) * patch,
        patch_size=patch,
        embed_dim=sd["cls_token"].shape[-1],
        depth=len({k.split(".")[1] for k in sd if k.startswith("blocks.")}),
        num_heads=2,
        ffn_dim=sd["blocks.0.mlp.fc1.weight"].shape[0],
        num_classes=sd["head.weight"].shape[0] if "head.weight" in sd else 0,
        norm_eps=1e-6,
        pos_embed_interp="official",
        official_slots=True,
    )
    model = ChAdaViT(**{**config, **overrides})
    model.load_state_dict_checked(sd, strict=True, source="official ChAda-ViT state dict")
    return model


def _preset(defaults: dict, overrides: dict) -> ChAdaViT:
    return ChAdaViT(**{**defaults, **overrides})


@register_model(input="microscopy", sized_by="max_channels")
def chadavit_test(**overrides) -> ChAdaViT:
    """Tiny ChAda-ViT for tests: D=32, depth 2, 2 heads, FFN 64, patch 8, 32 px, 16 slots."""
    cfg = dict(max_channels=16, img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, ffn_dim=64)
    return _preset(cfg, overrides)


@register_model(input="microscopy", sized_by="max_channels")
def chadavit_moyen_patch16(**overrides) -> ChAdaViT:
    """The released ChAda-ViT ("moyen"): D=192, depth 12, 2 heads, FFN 2048, patch 16, 10 slots.

    The official factory uses 2 heads; its notebook builds the class with 12. The weights fit
    both; override ``num_heads`` to match the checkpoint you load.
    """
    return _preset(dict(embed_dim=192, depth=12, num_heads=2, patch_size=16, max_channels=10), overrides)


@register_model(input="microscopy", sized_by="max_channels")
def chadavit_small_patch16(**overrides) -> ChAdaViT:
    """ChAda-ViT with ViT-S width: D=384, depth 12, 6 heads, FFN 1536, patch 16, 10 slots."""
    return _preset(dict(embed_dim=384, depth=12, num_heads=6, ffn_dim=1536, patch_size=16), overrides)


@register_model(input="microscopy", sized_by="max_channels", weights="chadavit_tiny_patch8.safetensors")
def chadavit_tiny_patch8(**overrides) -> ChAdaViT:
    """Small ChAda-ViT pretrained on synthetic multiplex tissue: D=128, depth 4, 4 heads, patch 8, 1-64 markers.

    Pretrained self-supervised (masked channel-token modelling, ``hyperplex.common.train.chada_mim``, a
    per-image mask ratio in 0-0.5, channel-slot embeddings started at standard deviation 1 so that the
    pooled feature depends on which marker is bright, and a patch projection started as a reader of each
    channel's patch mean plus 2, ``patch_init="mean", patch_offset=2``, so that texture inside a patch does
    not drive the feature and a dim marker is told from a bright one per channel) on standardised channels
    (``hyperplex.common.train.panels.standardize_channels``) of tissue from ``hyperplex.bio.synth`` with a random
    panel of 1-20 markers per batch and random channel slots, so any panel of up to 64 markers in any
    order fits. Its 32 px tiles are the size it was trained
    at; the model card ``weights/chadavit_tiny_patch8.md`` has the command and the evaluation.
    """
    cfg = dict(max_channels=64, img_size=32, patch_size=8, embed_dim=128, depth=4, num_heads=4, ffn_dim=512)
    return _preset(cfg, overrides)
