"""MIPHEI: predict multiplex immunofluorescence (mIF) marker channels from H&E RGB images.

Balezo et al., "MIPHEI-ViT: Multiplex Immunofluorescence Prediction from H&E Images using ViT
Foundation Models", arXiv 2505.10294 (code ``Sanofi-Public/MIPHEI-ViT``). A ViT encoder
(DINOv2-style with registers, patch 14; H-Optimus-0 in the paper) with LoRA on q and v and the
rest frozen, and a ViTMatte-style convolutional decoder with one head per marker.

The marker list is part of the model: ``model.output_channels`` is a
:class:`~hyperplex.common.channels.ChannelSet` of marker names, saved with the weights. Inputs are
RGB normalised with ``input_mean`` / ``input_std`` (see :meth:`MIPHEI.normalize`); outputs are in
[-1, 1] (tanh), the per-marker normalised intensity scale of the training data.

Presets: ``miphei_test`` (tiny, for tests), ``miphei_small`` (a small fully trainable ViT, 128 px
tiles; shipped weights trained on synthetic H&E / multiplex pairs), ``miphei_vits14`` (ViT-S/14 with
registers), ``miphei_vitg14`` (H-Optimus-0 architecture: ViT-g/14, 4 registers, SwiGLU; the paper
model, ~1.1 B parameters).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from hyperplex.common.channels import ChannelLike, ChannelSet
from hyperplex.common.errors import InvalidParameterError, MissingDependencyError
from hyperplex.common.layers.lora import apply_lora_qkv
from hyperplex.common.models._fixed_channels import FixedChannelModel
from hyperplex.common.models._registry import register_model
from hyperplex.common.models.miphei_decoder import DetailCaptureDecoder
from hyperplex.common.models.miphei_vit import RegisterViT, ViTFeatureEncoder

__all__ = ["MIPHEI", "ORION_MARKERS"]

#: The 16 ORION CRC mIF channels MIPHEI-ViT predicts, in the model's output order.
ORION_MARKERS = (
    "Hoechst", "CD31", "CD45", "CD68", "CD4", "FOXP3", "CD8a", "CD45RO",
    "CD20", "PD-L1", "CD3e", "CD163", "E-cadherin", "Ki67", "Pan-CK", "SMA",
)  # fmt: skip
#: H-Optimus-0 input normalisation (RGB in [0, 1]).
HOPTIMUS_MEAN = (0.707223, 0.578729, 0.703617)
HOPTIMUS_STD = (0.211883, 0.230117, 0.177517)


def _timm_vit(name: str, img_size: int, drop_path_rate: float) -> nn.Module:
    """Build a timm ViT without weights; needs the optional ``timm`` extra."""
    try:
        import timm
    except ImportError as err:
        raise MissingDependencyError(
            f"MIPHEI encoder 'timm:{name}' needs the optional timm package: pip install 'hyperplex[timm]', "
            "or use encoder='vit' (the built-in ViT)."
        ) from err
    return timm.create_model(
        name, pretrained=False, num_classes=0, global_pool="", img_size=img_size, drop_path_rate=drop_path_rate,
        dynamic_img_size=False,
    )  # fmt: skip


class MIPHEI(FixedChannelModel):
    """ViT encoder + detail-capture decoder mapping H&E RGB to one channel per marker.

    Call as ``model(x, channels)`` with ``x`` a normalised (B, 3, H, W) batch, H and W multiples
    of 16 (and of the ViT's native size for timm encoders); returns (B, len(markers), H, W).

    Args:
        markers: Output marker names, in output order.
        in_chans: Image channels (3 for RGB).
        encoder: ``"vit"`` (built-in :class:`RegisterViT`, configured by the next arguments) or
            ``"timm:<model name>"`` (a timm ViT, optional extra), e.g.
            ``"timm:vit_giant_patch14_reg4_dinov2"``.
        img_size: Image side the positional embedding is stored for (training tile size).
        patch_size: ViT patch size.
        embed_dim: ViT width.
        depth: ViT blocks.
        num_heads: ViT heads.
        mlp_ratio: ViT MLP ratio.
        mlp: ``"mlp"`` or ``"swiglu"``.
        reg_tokens: Register tokens.
        init_values: LayerScale initial gain.
        lora_rank: LoRA rank on q and v of every block (0 disables LoRA).
        lora_alpha: LoRA scale.
        freeze_encoder: Freeze every encoder weight except LoRA (MIPHEI-ViT training).
        convstream_out: Decoder conv-stream channels.
        fusion_out: Decoder fusion channels.
        use_attention: Attention gate in each marker head.
        activation: Output activation (``tanh``) or None.
        input_mean: Per-channel mean used by :meth:`normalize` (RGB in [0, 1]).
        input_std: Per-channel std used by :meth:`normalize`.
        drop_path_rate: Stochastic depth in the encoder.

    Raises:
        InvalidParameterError: For an empty marker list, a bad encoder spec or mean/std lengths.
    """

    def __init__(
        self,
        markers: Sequence[str] = ORION_MARKERS,
        in_chans: int = 3,
        encoder: str = "vit",
        img_size: int = 256,
        patch_size: int = 14,
        embed_dim: int = 384,
        depth: int = 12,
        num_heads: int = 6,
        mlp_ratio: float = 4.0,
        mlp: str = "mlp",
        reg_tokens: int = 4,
        init_values: float | None = 1e-5,
        lora_rank: int = 8,
        lora_alpha: float = 1.0,
        freeze_encoder: bool = True,
        convstream_out: Sequence[int] = (48, 96, 192),
        fusion_out: Sequence[int] = (256, 128, 64, 32),
        use_attention: bool = True,
        activation: str | None = "tanh",
        input_mean: Sequence[float] = HOPTIMUS_MEAN,
        input_std: Sequence[float] = HOPTIMUS_STD,
        drop_path_rate: float = 0.0,
    ):
        super().__init__()
        if not markers or len(set(markers)) != len(markers):
            raise InvalidParameterError(f"`markers` must be a non-empty list of unique names; got {markers!r}.")
        if len(input_mean) != in_chans or len(input_std) != in_chans:
            raise InvalidParameterError(f"`input_mean` and `input_std` need {in_chans} values (one per channel).")
        self.in_chans = in_chans
        self.markers = tuple(markers)
        if encoder == "vit":
            vit = RegisterViT(
                img_size, patch_size, in_chans, embed_dim, depth, num_heads, mlp_ratio, mlp, reg_tokens,
                init_values, drop_path_rate=drop_path_rate,
            )  # fmt: skip
        elif encoder.startswith("timm:"):
            vit = _timm_vit(encoder.removeprefix("timm:"), img_size, drop_path_rate)
        else:
            raise InvalidParameterError(f"`encoder` must be 'vit' or 'timm:<model name>'; got {encoder!r}.")
        self.encoder = ViTFeatureEncoder(vit)
        self._adapt_encoder(lora_rank, lora_alpha, freeze_encoder)
        self.decoder = DetailCaptureDecoder(
            self.encoder.embed_dim, in_chans, len(markers), convstream_out, fusion_out, use_attention, activation
        )
        self.register_buffer("input_mean", torch.tensor(input_mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("input_std", torch.tensor(input_std).view(1, -1, 1, 1), persistent=False)

    def _adapt_encoder(self, rank: int, alpha: float, freeze: bool) -> None:
        lora = apply_lora_qkv(self.encoder.vit.blocks, rank, alpha) if rank > 0 else []
        if freeze:
            self.encoder.requires_grad_(False)
            for module in lora:
                module.lora_q.requires_grad_(True)
                module.lora_v.requires_grad_(True)

    @property
    def output_channels(self) -> ChannelSet:
        """The predicted markers, as a ChannelSet of names (output channel order)."""
        return ChannelSet.from_names(self.markers)

    @property
    def fixed_input_size(self) -> int | None:
        """The only image side a timm encoder accepts (its ``img_size``); None for the built-in ViT (any size)."""
        return None if self.config.get("encoder", "vit") == "vit" else int(self.config["img_size"])

    def normalize(self, rgb: torch.Tensor) -> torch.Tensor:
        """Normalise an RGB batch with values in [0, 1] to the encoder's input statistics."""
        return (rgb - self.input_mean.to(rgb.dtype)) / self.input_std.to(rgb.dtype)

    def _check_size(self, x: torch.Tensor) -> None:
        h, w = x.shape[-2:]
        if h % 16 or w % 16:
            raise InvalidParameterError(
                f"{self._label()} needs image sides that are multiples of 16; got {h}x{w}. Pad or crop the "
                "image, or use hyperplex.common.models.predict_markers (tiles and pads)."
            )

    def forward_features(
        self, x: torch.Tensor, channels: ChannelLike | None = None, channel_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Encoder feature map (B, D, H/16, W/16) of a normalised batch.

        Raises:
            ChannelMismatchError: If the input is not ``in_chans`` channels (or not the trained ones).
            InvalidParameterError: If the image sides are not multiples of 16.
        """
        self.check_input(x, channels, channel_mask)
        self._check_size(x)
        return self.encoder(x)

    def feature_map(
        self, x: torch.Tensor, channels: ChannelLike | None = None, channel_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Dense features: the ViT encoder's map (B, D, H/16, W/16), as :meth:`forward_features`.

        The encoder (the foundation model, H-Optimus-0 in the paper) rather than the decoder: its
        features describe the tissue, while the decoder's are specialised to the trained markers.
        """
        return self.forward_features(x, channels, channel_mask)

    @property
    def feature_stride(self) -> int:
        """16: the encoder's patch grid is resized to stride 16 (MIPHEI-ViT)."""
        return 16

    @property
    def feature_dim(self) -> int:
        """The ViT width."""
        return self.encoder.embed_dim

    def forward(
        self, x: torch.Tensor, channels: ChannelLike | None = None, channel_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Predict the markers of a normalised (B, 3, H, W) batch: (B, len(markers), H, W).

        Args:
            x: Normalised images (see :meth:`normalize`).
            channels: Input channel names (e.g. ``["R", "G", "B"]``) or None.
            channel_mask: Not supported (must be None).

        Raises:
            ChannelMismatchError: If the input is not ``in_chans`` channels (or not the trained ones).
            InvalidParameterError: If the image sides are not multiples of 16.
        """
        return self.decoder(self.forward_features(x, channels, channel_mask), x)

    def num_tokens(self, num_channels: int, img_size: int | tuple[int, int]) -> int | None:
        """Tokens the ViT attends over for one image (prefix tokens plus patches)."""
        h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
        p = self.encoder.patch_size
        return int(self.encoder.vit.num_prefix_tokens) + (h // p) * (w // p)


def _miphei(defaults: dict[str, Any], overrides: dict[str, Any]) -> MIPHEI:
    return MIPHEI(**{**defaults, **overrides})


@register_model(input="he")
def miphei_test(**overrides: Any) -> MIPHEI:
    """Tiny MIPHEI (ViT width 32, 2 blocks, 4 markers, small decoder) for tests; 32x32 tiles."""
    cfg = dict(
        markers=("Hoechst", "CD3e", "Pan-CK", "SMA"), img_size=32, embed_dim=32, depth=2, num_heads=2,
        lora_rank=4, convstream_out=(8, 16, 16), fusion_out=(32, 16, 16, 8),
    )  # fmt: skip
    return _miphei(cfg, overrides)


@register_model(input="he", weights="miphei_small_synth.safetensors")
def miphei_small(**overrides: Any) -> MIPHEI:
    """Small MIPHEI for CPUs: ViT width 128, 4 blocks, patch 14, 4 registers, fully trainable, light decoder."""
    cfg = dict(
        img_size=128, embed_dim=128, depth=4, num_heads=2, lora_rank=0, freeze_encoder=False,
        convstream_out=(16, 32, 48), fusion_out=(48, 32, 24, 16), use_attention=False,
    )  # fmt: skip
    return _miphei(cfg, overrides)


@register_model(input="he")
def miphei_vits14(**overrides: Any) -> MIPHEI:
    """MIPHEI with a ViT-S/14 + 4 registers encoder (DINOv2-S layout), LoRA r=8, 16 ORION markers, 256 px."""
    return _miphei({}, overrides)


@register_model(input="he")
def miphei_vitg14(**overrides: Any) -> MIPHEI:
    """MIPHEI-ViT as published: H-Optimus-0 architecture (ViT-g/14, 4 registers, SwiGLU), LoRA r=8, 16 markers."""
    cfg = dict(embed_dim=1536, depth=40, num_heads=24, mlp_ratio=2.66667 * 2, mlp="swiglu")
    return _miphei(cfg, overrides)
