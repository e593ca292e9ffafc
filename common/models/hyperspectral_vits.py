"""HyperspectralViTs presets: HyperSegFormer and HyperEfficientViT for many-band segmentation.

Růžička & Markham, "HyperspectralViTs: General Hyperspectral Models for On-board Remote Sensing",
IEEE JSTARS 2025 (doi:10.1109/JSTARS.2025.3557527; code ``previtus/HyperspectralViTs``). The band
count is fixed per model (``in_chans``, default 86 EMIT bands in 400-2500 nm); override it with
``create_model("hypersegformer_b0", in_chans=50)``. Record the bands with
``model.set_trained_channels(channels)`` so that inference checks them.

Presets:

* ``hypersegformer_test``, ``hyperefficientvit_test``: tiny, for tests (8 bands).
* ``hypersegformer_b0`` (paper "ConvUpStride" on MiT-b0), ``hypersegformer_b1``, ``hypersegformer_b2``.
* ``hyperefficientvit_b0``, ``hyperefficientvit_b1`` (paper "ConvUp" on b1), ``hyperefficientvit_b2``.
* ``hypersegformer_plume``, ``hyperefficientvit_plume``: small two-class plume segmenters on the 49 EMIT
  bands in 2122-2488 nm plus a matched-filter channel (``hyperplex.geo.methane.plume_features``), for
  ``hyperplex methane detect --method hypersegformer|hyperefficientvit``.
"""

from __future__ import annotations

from typing import Any

from hyperplex.common.models._registry import register_model
from hyperplex.common.models.efficientvit import HyperEfficientViT
from hyperplex.common.models.segformer import HyperSegFormer

__all__: list[str] = []  # the model classes are exported by their own modules (segformer, efficientvit)

_MIT_B1 = {"embed_dims": (64, 128, 320, 512), "num_heads": (1, 2, 5, 8)}


def _segformer(defaults: dict[str, Any], overrides: dict[str, Any]) -> HyperSegFormer:
    return HyperSegFormer(**{**defaults, **overrides})


def _efficientvit(defaults: dict[str, Any], overrides: dict[str, Any]) -> HyperEfficientViT:
    return HyperEfficientViT(**{**defaults, **overrides})


@register_model(input="hyperspectral", sized_by="in_chans")
def hypersegformer_test(**overrides: Any) -> HyperSegFormer:
    """Tiny HyperSegFormer (8 bands, widths 8-32, one layer per stage) for tests."""
    cfg = dict(
        in_chans=8, embed_dims=(8, 16, 24, 32), depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2),
        sr_ratios=(4, 2, 1, 1), decoder_dim=16, drop_path_rate=0.0, classifier_dropout=0.0,
    )  # fmt: skip
    return _segformer(cfg, overrides)


@register_model(input="hyperspectral", sized_by="in_chans")
def hypersegformer_b0(**overrides: Any) -> HyperSegFormer:
    """MiT-b0 HyperSegFormer with 1x1 spectral convs, first stride 2 and upscale ("ConvUpStride"), 86 bands."""
    return _segformer({}, overrides)


@register_model(input="hyperspectral", sized_by="in_chans")
def hypersegformer_b1(**overrides: Any) -> HyperSegFormer:
    """MiT-b1 HyperSegFormer (widths 64-512), ConvUpStride, 86 bands."""
    return _segformer(_MIT_B1, overrides)


@register_model(input="hyperspectral", sized_by="in_chans")
def hypersegformer_b2(**overrides: Any) -> HyperSegFormer:
    """MiT-b2 HyperSegFormer (depths 3-4-6-3, decoder 768), ConvUpStride, 86 bands."""
    return _segformer({**_MIT_B1, "depths": (3, 4, 6, 3), "decoder_dim": 768}, overrides)


@register_model(input="hyperspectral", sized_by="in_chans")
def hyperefficientvit_test(**overrides: Any) -> HyperEfficientViT:
    """Tiny HyperEfficientViT (8 bands, widths 8-32) for tests."""
    cfg = dict(
        in_chans=8, widths=(8, 8, 16, 16, 32), depths=(1, 1, 1, 1, 1), head_dim=8, head_width=16,
        head_depth=1, final_expand=2, upscale_layers=1,
    )  # fmt: skip
    return _efficientvit(cfg, overrides)


@register_model(input="hyperspectral", sized_by="in_chans")
def hyperefficientvit_b0(**overrides: Any) -> HyperEfficientViT:
    """EfficientViT-b0 segmentation with 1x1 spectral convs and one upscale block, 86 bands."""
    cfg = dict(widths=(8, 16, 32, 64, 128), depths=(1, 2, 2, 2, 2), head_width=32, head_depth=1)
    return _efficientvit(cfg, overrides)


@register_model(input="hyperspectral", sized_by="in_chans")
def hyperefficientvit_b1(**overrides: Any) -> HyperEfficientViT:
    """EfficientViT-b1 "ConvUp", the HyperspectralViTs paper model, 86 bands."""
    return _efficientvit({}, overrides)


@register_model(input="hyperspectral", sized_by="in_chans")
def hyperefficientvit_b2(**overrides: Any) -> HyperEfficientViT:
    """EfficientViT-b2 segmentation with 1x1 spectral convs and one upscale block, 86 bands."""
    cfg = dict(widths=(24, 48, 96, 192, 384), depths=(1, 3, 4, 4, 6), head_dim=32, head_width=96)
    return _efficientvit(cfg, overrides)


@register_model(input="hyperspectral", sized_by="in_chans", weights="hypersegformer_plume.safetensors")
def hypersegformer_plume(**overrides: Any) -> HyperSegFormer:
    """Small HyperSegFormer for CH4 plume masks (49 EMIT bands 2122-2488 nm + matched filter, widths 16-128)."""
    cfg = dict(
        in_chans=50, num_classes=2, embed_dims=(16, 32, 64, 128), depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 4),
        decoder_dim=64, upscale_layers=1, drop_path_rate=0.0,
    )  # fmt: skip
    return _segformer(cfg, overrides)


@register_model(input="hyperspectral", sized_by="in_chans", weights="hyperefficientvit_plume.safetensors")
def hyperefficientvit_plume(**overrides: Any) -> HyperEfficientViT:
    """Small HyperEfficientViT (b0 widths) for CH4 plume masks (49 EMIT bands 2122-2488 nm + matched filter)."""
    cfg = dict(in_chans=50, num_classes=2, widths=(8, 16, 32, 64, 128), depths=(1, 2, 2, 2, 2), head_width=32,
               head_depth=1)  # fmt: skip
    return _efficientvit(cfg, overrides)
