"""HyperSegFormer: SegFormer (MiT encoder + all-MLP decoder) adapted to many-band imagery.

Xie et al., NeurIPS 2021 (SegFormer); Růžička & Markham, "HyperspectralViTs", IEEE JSTARS 2025
(doi:10.1109/JSTARS.2025.3557527). The HyperspectralViTs changes are all switches here:

* ``spectral_conv``: a 1x1 convolution before the patch convolution, in the first stage
  (``"first"``) or in every stage (``"all"``, the paper's "Conv" variant);
* ``strides``: a first stride of 2 instead of 4 ("Stride"), for finer features of small plumes;
* ``upscale``: an :class:`~hyperplex.common.layers.upscale.UpscaleBlock` (x2) before the classifier ("Up").

Logits are returned at the input resolution (bilinear resize of the decoder output when needed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hyperplex.common.errors import InvalidParameterError
from hyperplex.common.layers.drop_path import drop_path_rates
from hyperplex.common.layers.segformer_blocks import OverlapPatchEmbed, SegFormerLayer, tokens_to_map
from hyperplex.common.layers.upscale import UpscaleBlock
from hyperplex.common.models._fixed_channels import FixedChannelSegmenter

__all__ = ["HyperSegFormer"]

_SPECTRAL_CONV = ("none", "first", "all")


class MiTEncoder(nn.Module):
    """Mix Transformer encoder: 4 stages of overlapping patch embedding, layers and a final LayerNorm.

    Args:
        in_chans: Input channels.
        embed_dims: Width per stage.
        depths: Layers per stage.
        num_heads: Heads per stage.
        sr_ratios: Key/value spatial reduction per stage.
        patch_sizes: Patch-embedding kernel per stage.
        strides: Patch-embedding stride per stage.
        mlp_ratios: Mix-FFN ratio per stage.
        spectral_conv: ``"none"``, ``"first"`` or ``"all"`` stages get a 1x1 conv before the patch conv.
        drop_rate: Dropout in the layers.
        drop_path_rate: Maximum stochastic depth (linear over all layers).
    """

    def __init__(
        self,
        in_chans: int,
        embed_dims: Sequence[int],
        depths: Sequence[int],
        num_heads: Sequence[int],
        sr_ratios: Sequence[int],
        patch_sizes: Sequence[int],
        strides: Sequence[int],
        mlp_ratios: Sequence[float],
        spectral_conv: str = "all",
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
    ):
        super().__init__()
        rates = drop_path_rates(drop_path_rate, sum(depths))
        dims_in = [in_chans, *embed_dims[:-1]]
        self.patch_embeds = nn.ModuleList(
            OverlapPatchEmbed(c, d, k, s, spectral_conv == "all" or (spectral_conv == "first" and i == 0))
            for i, (c, d, k, s) in enumerate(zip(dims_in, embed_dims, patch_sizes, strides))
        )
        starts = [sum(depths[:i]) for i in range(len(depths))]
        self.stages = nn.ModuleList(
            nn.ModuleList(SegFormerLayer(d, h, sr, r, drop_rate, rates[start + j]) for j in range(depth))
            for d, h, sr, r, depth, start in zip(embed_dims, num_heads, sr_ratios, mlp_ratios, depths, starts)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(d) for d in embed_dims)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return the feature map of every stage, (B, D_i, H_i, W_i), finest first."""
        features = []
        for embed, layers, norm in zip(self.patch_embeds, self.stages, self.norms):
            tokens, h, w = embed(x)
            for layer in layers:
                tokens = layer(tokens, h, w)
            x = tokens_to_map(norm(tokens), h, w)
            features.append(x)
        return features


class SegFormerHead(nn.Module):
    """All-MLP decoder: per-stage linear to ``decoder_dim``, resize to stage 1, concat, fuse, classify.

    Args:
        in_dims: Encoder widths per stage.
        decoder_dim: Common width.
        num_classes: Output channels.
        dropout: Dropout before the (upscale and) classifier.
        upscale: Add a x2 :class:`UpscaleBlock` before the classifier.
        upscale_ratio: Channel reduction of the upscale block.
        upscale_layers: Convolutions in the upscale block (1 or 2).
    """

    def __init__(
        self,
        in_dims: Sequence[int],
        decoder_dim: int,
        num_classes: int,
        dropout: float = 0.1,
        upscale: bool = True,
        upscale_ratio: int = 2,
        upscale_layers: int = 2,
    ):
        super().__init__()
        self.proj = nn.ModuleList(nn.Linear(d, decoder_dim) for d in in_dims)
        self.fuse = nn.Conv2d(decoder_dim * len(in_dims), decoder_dim, 1, bias=False)
        self.norm = nn.BatchNorm2d(decoder_dim)
        self.dropout = nn.Dropout(dropout)
        out_dim = decoder_dim // upscale_ratio if upscale else decoder_dim
        self.upscale = UpscaleBlock(decoder_dim, out_dim, upscale_layers) if upscale else None
        self.classifier = nn.Conv2d(out_dim, num_classes, 1)

    def fuse_features(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Fused map (B, decoder_dim, H_1, W_1) of the stage features (finest first), before dropout."""
        size = features[0].shape[-2:]
        maps = []
        for feat, proj in zip(features, self.proj):
            mapped = tokens_to_map(proj(feat.flatten(2).transpose(1, 2)), *feat.shape[-2:])
            maps.append(F.interpolate(mapped, size=size, mode="bilinear", align_corners=False))
        return F.relu(self.norm(self.fuse(torch.cat(maps[::-1], dim=1))))

    def classify(self, fused: torch.Tensor) -> torch.Tensor:
        """Logits at stage-1 resolution (x2 with upscale) from :meth:`fuse_features`' map."""
        x = self.dropout(fused)
        if self.upscale is not None:
            x = self.upscale(x)
        return self.classifier(x)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """Decode stage features (finest first) into logits at stage-1 resolution (x2 with upscale)."""
        return self.classify(self.fuse_features(features))


class HyperSegFormer(FixedChannelSegmenter):
    """SegFormer segmentation model for a fixed set of (many) spectral bands.

    Defaults are MiT-b0 with the HyperspectralViTs "ConvUpStride" changes. Call as
    ``model(x, channels)`` with ``x`` (B, in_chans, H, W); returns logits (B, num_classes, H, W).

    Args:
        in_chans: Number of input bands (e.g. 86 EMIT bands).
        num_classes: Output channels (1 for binary plume segmentation with BCE).
        embed_dims: Encoder width per stage.
        depths: Layers per stage.
        num_heads: Attention heads per stage.
        sr_ratios: Key/value spatial reduction per stage.
        patch_sizes: Overlapping patch-embedding kernel per stage.
        strides: Patch-embedding stride per stage (MiT default ``[4, 2, 2, 2]``).
        mlp_ratios: Mix-FFN ratio per stage.
        decoder_dim: Width of the all-MLP decoder.
        spectral_conv: 1x1 spectral conv before the patch conv: ``"none"``, ``"first"`` or ``"all"``.
        upscale: UpscaleBlock (x2) before the classifier.
        upscale_ratio: Channel reduction of the upscale block.
        upscale_layers: Convolutions in the upscale block.
        drop_rate: Dropout inside the encoder.
        drop_path_rate: Stochastic depth of the encoder.
        classifier_dropout: Dropout before the classifier.

    Raises:
        InvalidParameterError: For inconsistent stage lists or an unknown ``spectral_conv``.
    """

    def __init__(
        self,
        in_chans: int = 86,
        num_classes: int = 1,
        embed_dims: Sequence[int] = (32, 64, 160, 256),
        depths: Sequence[int] = (2, 2, 2, 2),
        num_heads: Sequence[int] = (1, 2, 5, 8),
        sr_ratios: Sequence[int] = (8, 4, 2, 1),
        patch_sizes: Sequence[int] = (7, 3, 3, 3),
        strides: Sequence[int] = (2, 2, 2, 2),
        mlp_ratios: Sequence[float] = (4, 4, 4, 4),
        decoder_dim: int = 256,
        spectral_conv: str = "all",
        upscale: bool = True,
        upscale_ratio: int = 2,
        upscale_layers: int = 2,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        classifier_dropout: float = 0.1,
    ):
        super().__init__()
        stage_args = (embed_dims, depths, num_heads, sr_ratios, patch_sizes, strides, mlp_ratios)
        if len({len(a) for a in stage_args}) != 1:
            raise InvalidParameterError(
                "HyperSegFormer: embed_dims, depths, num_heads, sr_ratios, patch_sizes, strides and mlp_ratios "
                f"must have one entry per stage; got lengths {[len(a) for a in stage_args]}."
            )
        if spectral_conv not in _SPECTRAL_CONV:
            raise InvalidParameterError(f"`spectral_conv` must be one of {_SPECTRAL_CONV}; got {spectral_conv!r}.")
        self.in_chans = in_chans
        self.num_classes = num_classes
        self.encoder = MiTEncoder(in_chans, *stage_args, spectral_conv, drop_rate, drop_path_rate)
        self.decode_head = SegFormerHead(
            embed_dims, decoder_dim, num_classes, classifier_dropout, upscale, upscale_ratio, upscale_layers
        )
        self.apply(_init_weights)

    def num_tokens(self, num_channels: int, img_size: int | tuple[int, int]) -> int | None:
        """Tokens of the first (largest) stage, where attention queries run over every position."""
        h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
        stride = self.config["strides"][0]
        return -(-h // stride) * -(-w // stride)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Encoder feature maps of all stages, finest first: ``[(B, D_i, H_i, W_i)]``."""
        return self.encoder(x)

    def decode_features(self, features: list[torch.Tensor]) -> torch.Tensor:
        """The all-MLP decoder's fused map (B, decoder_dim, H / strides[0], W / strides[0])."""
        return self.decode_head.fuse_features(features)

    def classify(self, fused: torch.Tensor) -> torch.Tensor:
        """Dropout, optional upscale block and the classifier: logits at stride ``strides[0]`` (/2 with upscale)."""
        return self.decode_head.classify(fused)

    @property
    def feature_stride(self) -> int:
        """The first stage's stride (the decoder fuses every stage at that resolution)."""
        return int(self.config["strides"][0])

    @property
    def feature_dim(self) -> int:
        """The decoder width."""
        return int(self.config["decoder_dim"])

    @property
    def input_multiple(self) -> int:
        """The product of the stage strides (the coarsest stage's stride)."""
        return int(math.prod(self.config["strides"]))


def _init_weights(module: nn.Module) -> None:
    """SegFormer init: normal(0, 0.02) weights and zero biases for linear and conv layers."""
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
