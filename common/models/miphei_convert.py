"""Load MIPHEI-ViT checkpoints (``Sanofi-Public/MIPHEI-ViT``) and timm ViT weights into :class:`MIPHEI`.

Official generator layout (``ViTMatte(encoder=Encoder(vit), decoder=Detail_Capture)``, commit 2887b5f)::

    encoder.vit.{cls_token,reg_token,pos_embed,patch_embed.proj.*,norm.*}       timm ViT
    encoder.vit.blocks.{i}.{norm1,norm2,ls1.gamma,ls2.gamma,attn.proj,mlp.fc1,mlp.fc2}.*
    encoder.vit.blocks.{i}.attn.qkv.qkv.*                                      frozen qkv inside QkvWithLoRA
    encoder.vit.blocks.{i}.attn.qkv.lora_{q,v}.{A,B}                           A (in, r), B (r, out)
    decoder.convstream.convs.{k}.{conv,bn}.*
    decoder.fusion_blks.{k}.conv.{conv,bn}.*
    decoder.segmentation_head_{m}.0.psi.{0,1,3}.*                              attention gate (conv, BN, conv)
    decoder.segmentation_head_{m}.1.*                                          3x3 conv to one channel

Lightning checkpoints prefix these with ``generator.`` (removed here). The released
``model.safetensors`` omits the frozen foundation-model weights (only LoRA and decoder are kept,
``scripts/ckpt_remove_foundation_model.py``): pass the H-Optimus-0 (timm) weights separately as
``encoder_state_dict`` to :func:`load_miphei_state_dict`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from hyperplex.common.errors import ModelCompatibilityError
from hyperplex.common.layers.lora import LoRAQkv
from hyperplex.common.layers.pos_embed import resample_pos_embed
from hyperplex.common.models.miphei import MIPHEI

__all__ = ["convert_miphei_state_dict", "convert_timm_vit_state_dict", "load_miphei_state_dict"]

_RULES = [
    (r"\.attn\.qkv\.qkv\.", ".attn.qkv.base."),
    (r"\.attn\.qkv\.lora_([qv])\.A$", r".attn.qkv.lora_\1.down"),
    (r"\.attn\.qkv\.lora_([qv])\.B$", r".attn.qkv.lora_\1.up"),
    (r"^decoder\.convstream\.convs\.(\d+)\.", r"decoder.detail.\1."),
    (r"^decoder\.fusion_blks\.(\d+)\.conv\.", r"decoder.fusions.\1."),
    (r"^decoder\.segmentation_head_(\d+)\.0\.psi\.0\.", r"decoder.heads.\1.gate_reduce."),
    (r"^decoder\.segmentation_head_(\d+)\.0\.psi\.1\.", r"decoder.heads.\1.gate_norm."),
    (r"^decoder\.segmentation_head_(\d+)\.0\.psi\.3\.", r"decoder.heads.\1.gate_out."),
    (r"^decoder\.segmentation_head_(\d+)\.1\.", r"decoder.heads.\1.conv."),
]
_PLAIN_QKV = re.compile(r"^(encoder\.vit\.blocks\.\d+\.attn\.qkv)\.(weight|bias)$")


def convert_miphei_state_dict(state_dict: Mapping[str, torch.Tensor], *, lora: bool = True) -> dict[str, torch.Tensor]:
    """Map an official MIPHEI-ViT generator state dict to :class:`MIPHEI` keys.

    Args:
        state_dict: Official keys (optionally ``generator.``-prefixed).
        lora: Whether the target model wraps qkv with LoRA; then plain ``attn.qkv.{weight,bias}``
            (a checkpoint without LoRA) go to ``attn.qkv.base``.

    Returns:
        The same tensors under our keys.
    """
    out = {}
    for key, value in state_dict.items():
        new = key.removeprefix("generator.")
        for pattern, repl in _RULES:
            new = re.sub(pattern, repl, new)
        if lora:
            new = _PLAIN_QKV.sub(r"\1.base.\2", new)
        out[new] = value
    return out


def convert_timm_vit_state_dict(state_dict: Mapping[str, torch.Tensor], model: MIPHEI) -> dict[str, torch.Tensor]:
    """Map a timm ``vit_*_reg*_dinov2`` state dict (e.g. H-Optimus-0) onto ``model.encoder``.

    The positional embedding is resampled bicubically to the model's patch grid (as MIPHEI-ViT's
    ``resize_pos_embed_statedict``); the classifier head, if any, is dropped.

    Args:
        state_dict: timm ViT keys (``cls_token``, ``blocks.0.attn.qkv.weight``, ...).
        model: The target model (gives the grid and whether qkv carries LoRA).

    Returns:
        Keys prefixed ``encoder.vit.`` in our layout.
    """
    vit = model.encoder.vit
    lora = any(isinstance(m, LoRAQkv) for m in vit.modules())
    out = {}
    for key, value in state_dict.items():
        if key.startswith("head."):
            continue
        if key == "pos_embed" and hasattr(vit, "grid") and value.shape[1] != vit.pos_embed.shape[1]:
            value = resample_pos_embed(value, vit.grid, num_prefix=0)
        out["encoder.vit." + key] = value
    return convert_miphei_state_dict(out, lora=lora)


def load_miphei_state_dict(
    model: MIPHEI,
    state_dict: Mapping[str, torch.Tensor],
    *,
    encoder_state_dict: Mapping[str, torch.Tensor] | None = None,
    strict: bool = True,
    source: str = "state dict",
) -> None:
    """Load an official MIPHEI-ViT checkpoint (plus, optionally, the frozen encoder's timm weights).

    Args:
        model: A MIPHEI built with the checkpoint's configuration (markers, encoder size, LoRA rank).
        state_dict: Official generator keys (full, or pruned to LoRA + decoder).
        encoder_state_dict: timm ViT weights for the frozen encoder (H-Optimus-0); entries already in
            ``state_dict`` (LoRA) take precedence.
        strict: Require every model key to be provided, and no unknown keys.
        source: Checkpoint name for error messages.

    Raises:
        ModelCompatibilityError: If keys or shapes do not fit the model.
    """
    if not isinstance(model, MIPHEI):
        raise ModelCompatibilityError(f"{source}: expected a MIPHEI model, got {type(model).__name__}.")
    lora = any(isinstance(m, LoRAQkv) for m in model.modules())
    converted = {} if encoder_state_dict is None else convert_timm_vit_state_dict(encoder_state_dict, model)
    converted.update(convert_miphei_state_dict(state_dict, lora=lora))
    model.load_state_dict_checked(converted, strict=strict, source=source)
