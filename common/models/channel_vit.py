"""ChannelViT: one token per channel and patch, learned channel embeddings, shared positions.

Bao, Sivanandan, Karaletsos, "Channel Vision Transformers: An Image Is Worth 1 x 16 x 16 Words",
ICLR 2024, https://arxiv.org/abs/2309.16108 (official code: insitro/ChannelViT).

Tokens are in channel-major order (token ``c * N + n``) after a CLS token, so a batch with C
channels attends over ``1 + C * N`` tokens with fused attention. Channels are identified by name
through the channel vocabulary in the config (``channel_vocab``; anonymous ``c0..`` by default).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from hyperplex.common.channels import ChannelLike, ChannelSet
from hyperplex.common.layers import PatchEmbedPerChannel, trunc_normal_init, vit_blocks
from hyperplex.common.models._channel_tokens import ChannelTokenModel
from hyperplex.common.models._official_pos import check_pos_embed_interp, official_patch_pos
from hyperplex.common.models._registry import register_model
from hyperplex.common.models._vocab import channel_indices, make_vocab
from hyperplex.common.models.hcs import HierarchicalChannelSampler

__all__ = ["ChannelViT", "channelvit_from_official", "convert_channelvit_state_dict"]


def _grid(img_size: int | list[int]) -> tuple[int, int]:
    return (img_size, img_size) if isinstance(img_size, int) else (int(img_size[0]), int(img_size[1]))


class ChannelViT(ChannelTokenModel):
    """Channel Vision Transformer (with optional Hierarchical Channel Sampling in training).

    Args:
        channel_vocab: Channel names, one row of the channel-embedding table each.
        in_chans: Number of channels when no vocabulary is given (names ``c0..``).
        img_size: Training image size (positional embeddings are resampled for other sizes).
        patch_size: Patch side in pixels.
        embed_dim: Token width.
        depth: Number of transformer blocks.
        num_heads: Attention heads.
        mlp_ratio: MLP hidden size relative to ``embed_dim``.
        qkv_bias: Bias on the qkv projections.
        drop_rate: Dropout on tokens and projections.
        attn_drop_rate: Dropout on attention weights.
        drop_path_rate: Stochastic depth at the last block (linear from 0).
        num_classes: Size of the linear head on the CLS token (0: return the CLS embedding).
        hcs: Apply Hierarchical Channel Sampling in training mode.
        norm_eps: LayerNorm epsilon.
        pos_embed_interp: ``"exact"`` (default): the stored positional embedding at the training size,
            a bicubic resize to the patch grid elsewhere. ``"official"``: as the official
            ``interpolate_pos_encoding``, which compares the token count of all channels with the stored
            grid, so with more than one channel it always applies DINO's ``scale_factor`` resize (not an
            identity, also at the training size); the released checkpoints were trained and evaluated
            that way, and :func:`channelvit_from_official` sets it.
    """

    def __init__(
        self,
        channel_vocab: list[str] | None = None,
        in_chans: int | None = 3,
        img_size: int | list[int] = 224,
        patch_size: int = 16,
        embed_dim: int = 384,
        depth: int = 12,
        num_heads: int = 6,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        num_classes: int = 0,
        hcs: bool = True,
        norm_eps: float = 1e-6,
        pos_embed_interp: str = "exact",
    ):
        super().__init__()
        self.pos_embed_interp = check_pos_embed_interp(pos_embed_interp)
        self.channel_vocab = make_vocab(channel_vocab, None if channel_vocab is not None else in_chans)
        self.patch_size = patch_size
        self.grid = (_grid(img_size)[0] // patch_size, _grid(img_size)[1] // patch_size)
        self.embed_dim = embed_dim
        self.patch_embed = PatchEmbedPerChannel(embed_dim, patch_size)
        self.channel_embed = nn.Embedding(len(self.channel_vocab), embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid[0] * self.grid[1], embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        self.hcs = HierarchicalChannelSampler(enabled=hcs)
        self.blocks = vit_blocks(embed_dim, depth, num_heads, mlp_ratio, qkv_bias, drop_rate, attn_drop_rate,
                                 drop_path_rate, norm_eps)  # fmt: skip
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise as the official code: truncated normal (std 0.02) weights, zero biases."""
        trunc_normal_init(self.modules(), (self.pos_embed, self.cls_token, self.channel_embed.weight))

    # ------------------------------------------------------------------ channels
    def check_channels(self, channels: ChannelLike) -> ChannelSet:
        """Check every channel is in the vocabulary; return the ChannelSet.

        Raises:
            ChannelMismatchError: If a channel name is unknown.
        """
        cs = ChannelSet.coerce(channels)
        channel_indices(self.channel_vocab, cs)
        return cs

    # ------------------------------------------------------------------ forward
    def _sample_channels(
        self, x: torch.Tensor, idx: torch.Tensor, channel_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        keep = self.hcs(x.shape[1])
        if keep is None:
            return x, idx, channel_mask
        keep = keep.to(x.device)
        return x[:, keep], idx[keep], None if channel_mask is None else channel_mask[:, keep]

    def sequence_pos(self, image_size: tuple[int, int], num_channels: int) -> torch.Tensor:
        """Positional embeddings (1, 1 + C * N, D) of the token sequence of ``num_channels`` channels.

        ``pos_embed_interp="official"`` reproduces the official code, including its use of the stored
        embedding along the whole sequence when ``C * N`` equals the stored patch count.
        """
        c, grid = num_channels, (image_size[0] // self.patch_size, image_size[1] // self.patch_size)
        if self.pos_embed_interp == "exact":
            pos = self._pos_embed(grid)
            return torch.cat([pos[:, :1], pos[:, 1:].repeat(1, c, 1)], dim=1)
        patches = official_patch_pos(self.pos_embed, image_size, self.patch_size, c * grid[0] * grid[1])
        patches = patches if patches.shape[1] == c * grid[0] * grid[1] else patches.repeat(1, c, 1)
        return torch.cat([self.pos_embed[:, :1], patches], dim=1)

    def embed(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Tokens (B, 1 + C * N, D) of ``x`` (B, C, H, W) with embedding rows ``idx`` (C,)."""
        tokens = self.patch_embed(x)  # (B, C, N, D)
        tokens = tokens + self.channel_embed(idx)[None, :, None, :]
        seq = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), tokens.flatten(1, 2)], dim=1)
        return self.pos_drop(seq + self.sequence_pos(tuple(x.shape[-2:]), x.shape[1]))

    def tokenize(
        self, x: torch.Tensor, channels: ChannelSet, channel_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Tokens of the vocabulary channels ``channels``, after Hierarchical Channel Sampling in training."""
        idx = channel_indices(self.channel_vocab, channels, x.device)
        x, idx, channel_mask = self._sample_channels(x, idx, channel_mask)
        return self.embed(x, idx), channel_mask


def convert_channelvit_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map an official insitro/ChannelViT state dict to :class:`ChannelViT` keys.

    Mapping (both official variants):

    - ``patch_embed.proj.weight`` Conv3d ``(D, 1, 1, p, p)`` -> ``patch_embed.proj.weight`` Conv2d
      ``(D, 1, p, p)``; ``patch_embed.proj.bias`` unchanged.
    - ``hcs_channel_vit.py``: ``patch_embed.channel_embed.weight`` (C, D) -> ``channel_embed.weight``.
    - ``channel_vit.py``: ``patch_embed.channel_embed`` (1, D, C, 1, 1) -> ``channel_embed.weight`` (C, D).
    - ``cls_token``, ``pos_embed``, ``blocks.<i>.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``,
      ``norm``, ``head``: same names and shapes.

    A ``module.`` / ``backbone.`` prefix (DDP, meta-architecture) is stripped. The official
    channel index ``i`` becomes vocabulary entry ``i``: build the model with ``in_chans`` equal to
    the checkpoint's channel count, or a ``channel_vocab`` listing the channels in the official order.
    """
    out = {}
    for key, value in state_dict.items():
        key = _strip_prefix(key)
        if key == "patch_embed.proj.weight" and value.ndim == 5:
            value = value[:, :, 0]
        elif key == "patch_embed.channel_embed.weight":
            key = "channel_embed.weight"
        elif key == "patch_embed.channel_embed":
            key, value = "channel_embed.weight", value[0, :, :, 0, 0].t()
        out[key] = value.contiguous()
    return out


def channelvit_from_official(state_dict: dict[str, torch.Tensor], **overrides: Any) -> ChannelViT:
    """A :class:`ChannelViT` that computes what the official insitro/ChannelViT model does with these weights.

    The architecture is read from the weights (width, depth, patch size, training size, channel count,
    MLP ratio, qkv bias, head); the rest is the official factories' (LayerNorm eps 1e-6, one head per
    64 channels of width: 3 / 6 / 12 for tiny / small / base) with ``pos_embed_interp="official"``.
    The weights are converted with :func:`convert_channelvit_state_dict` and loaded strictly.

    Args:
        state_dict: Official weights (``hcs_channel_vit.py`` or ``channel_vit.py`` layout).
        **overrides: ChannelViT arguments that win over the inferred ones (``num_heads``, ``channel_vocab``
            listing the channels in the official order, ``hcs``, ...).

    Raises:
        ModelCompatibilityError: If the weights do not fit the model built.
    """
    sd = convert_channelvit_state_dict(state_dict)
    dim, patch = sd["cls_token"].shape[-1], sd["patch_embed.proj.weight"].shape[-1]
    config: dict[str, Any] = dict(
        in_chans=sd["channel_embed.weight"].shape[0],
        img_size=math.isqrt(sd["pos_embed"].shape[1] - 1) * patch,
        patch_size=patch,
        embed_dim=dim,
        depth=len({k.split(".")[1] for k in sd if k.startswith("blocks.")}),
        num_heads=max(dim // 64, 1),
        mlp_ratio=sd["blocks.0.mlp.fc1.weight"].shape[0] / dim,
        qkv_bias="blocks.0.attn.qkv.bias" in sd,
        num_classes=sd["head.weight"].shape[0] if "head.weight" in sd else 0,
        norm_eps=1e-6,
        pos_embed_interp="official",
    )
    if "channel_vocab" in overrides:
        config["in_chans"] = None
    model = ChannelViT(**{**config, **overrides})
    model.load_state_dict_checked(sd, strict=True, source="official ChannelViT state dict")
    return model


def _strip_prefix(key: str) -> str:
    for prefix in ("module.", "backbone."):
        if key.startswith(prefix):
            key = key[len(prefix) :]
    return key


def _preset(defaults: dict, overrides: dict) -> ChannelViT:
    return ChannelViT(**{**defaults, **overrides})


@register_model(input="microscopy", sized_by="channel_vocab")
def channelvit_test(**overrides) -> ChannelViT:
    """Tiny ChannelViT for tests: D=32, depth 2, 2 heads, patch 8, 32 px, 8 channels."""
    cfg = dict(in_chans=8, img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2)
    return _preset(cfg, overrides)


@register_model(input="microscopy", sized_by="channel_vocab")
def channelvit_tiny_patch16(**overrides) -> ChannelViT:
    """ChannelViT-T/16 (D=192, depth 12, 3 heads), 224 px."""
    return _preset(dict(embed_dim=192, depth=12, num_heads=3, patch_size=16), overrides)


@register_model(input="microscopy", sized_by="channel_vocab")
def channelvit_small_patch16(**overrides) -> ChannelViT:
    """ChannelViT-S/16 (D=384, depth 12, 6 heads), 224 px (the official ImageNet checkpoints)."""
    return _preset(dict(embed_dim=384, depth=12, num_heads=6, patch_size=16), overrides)


@register_model(input="microscopy", sized_by="channel_vocab")
def channelvit_small_patch8(**overrides) -> ChannelViT:
    """ChannelViT-S/8, 224 px, 8 channels (the official JUMP-CP cell paint + brightfield checkpoint)."""
    return _preset(dict(in_chans=8, embed_dim=384, depth=12, num_heads=6, patch_size=8), overrides)


@register_model(input="microscopy", sized_by="channel_vocab")
def channelvit_base_patch16(**overrides) -> ChannelViT:
    """ChannelViT-B/16 (D=768, depth 12, 12 heads), 224 px."""
    return _preset(dict(embed_dim=768, depth=12, num_heads=12, patch_size=16), overrides)
