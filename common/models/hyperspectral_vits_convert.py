"""Load HyperspectralViTs checkpoints (``previtus/HyperspectralViTs``) into our models.

Official layouts (read at commit a184a25):

* HyperSegFormer, ``SegformerForSemanticSegmentation_HSI`` (Hugging Face SegFormer naming)::

    segformer.encoder.patch_embeddings.{i}.{proj_1x1,proj_kxk,layer_norm}.*
    segformer.encoder.block.{i}.{j}.layer_norm_1.*
    segformer.encoder.block.{i}.{j}.attention.self.{query,key,value,sr,layer_norm}.*
    segformer.encoder.block.{i}.{j}.attention.output.dense.*
    segformer.encoder.block.{i}.{j}.layer_norm_2.*
    segformer.encoder.block.{i}.{j}.mlp.{dense1,dwconv.dwconv,dense2}.*
    segformer.encoder.layer_norm.{i}.*
    decode_head.{linear_c.{i}.proj,linear_fuse,batch_norm,upscale.{conv1,bn1,conv2,bn2},classifier}.*

* HyperEfficientViT, ``EfficientViTSeg`` (MIT-Han-lab naming, ``op_list`` / ``main`` wrappers)::

    backbone.input_stem_proj_1x1.*          backbone.input_stem.op_list.{k}[.main].*
    backbone.stages_conv1x1.{i}.*           backbone.stages.{i}.op_list.{k}[.main].*
    backbone.stages.{i}.op_list.{k}.{context_module,local_module}.main.*
    head.input_ops.{i}[.op_list.0].*        head.middle.op_list.{k}.main.*
    head.upscale{1,2}.*                     head.output_ops.0.op_list.{0,1}.*

PyTorch-Lightning checkpoints of that repository prefix every key with ``network.``; it is removed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
from torch import nn

from hyperplex.common.errors import ModelCompatibilityError
from hyperplex.common.models.efficientvit import HyperEfficientViT
from hyperplex.common.models.segformer import HyperSegFormer

__all__ = ["convert_efficientvit_state_dict", "convert_segformer_state_dict", "load_hyperspectral_vits_state_dict"]

_SEGFORMER_RULES = [
    (r"^segformer\.encoder\.patch_embeddings\.(\d+)\.proj_1x1\.", r"encoder.patch_embeds.\1.spectral."),
    (r"^segformer\.encoder\.patch_embeddings\.(\d+)\.proj_kxk\.", r"encoder.patch_embeds.\1.proj."),
    (r"^segformer\.encoder\.patch_embeddings\.(\d+)\.layer_norm\.", r"encoder.patch_embeds.\1.norm."),
    (r"^segformer\.encoder\.block\.(\d+)\.(\d+)\.", r"encoder.stages.\1.\2."),
    (r"^segformer\.encoder\.layer_norm\.(\d+)\.", r"encoder.norms.\1."),
    (r"\.layer_norm_1\.", ".norm1."),
    (r"\.layer_norm_2\.", ".norm2."),
    (r"\.attention\.self\.query\.", ".attn.q."),
    (r"\.attention\.self\.key\.", ".attn.k."),
    (r"\.attention\.self\.value\.", ".attn.v."),
    (r"\.attention\.self\.sr\.", ".attn.sr."),
    (r"\.attention\.self\.layer_norm\.", ".attn.norm."),
    (r"\.attention\.output\.dense\.", ".attn.proj."),
    (r"\.mlp\.dense1\.", ".mlp.fc1."),
    (r"\.mlp\.dwconv\.dwconv\.", ".mlp.dwconv."),
    (r"\.mlp\.dense2\.", ".mlp.fc2."),
    (r"^decode_head\.linear_c\.(\d+)\.proj\.", r"decode_head.proj.\1."),
    (r"^decode_head\.linear_fuse\.", "decode_head.fuse."),
    (r"^decode_head\.batch_norm\.", "decode_head.norm."),
]

_EFFICIENTVIT_RULES = [
    (r"^backbone\.input_stem_proj_1x1\.", "backbone.spectral_conv."),
    (r"^backbone\.input_stem\.op_list\.", "backbone.stem."),
    (r"^backbone\.stages_conv1x1\.", "backbone.stage_convs."),
    (r"^backbone\.stages\.(\d+)\.op_list\.", r"backbone.stages.\1."),
    (r"\.context_module\.main\.", ".context."),
    (r"\.local_module\.main\.", ".local."),
    (r"^head\.input_ops\.(\d+)\.op_list\.0\.", r"head.inputs.\1."),
    (r"^head\.input_ops\.(\d+)\.", r"head.inputs.\1."),
    (r"^head\.middle\.op_list\.(\d+)\.main\.", r"head.middle.\1."),
    (r"^head\.upscale1\.", "head.upscale.0."),
    (r"^head\.upscale2\.", "head.upscale.1."),
]


def _rename(state_dict: Mapping[str, torch.Tensor], rules: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in state_dict.items():
        new = key.removeprefix("network.")
        for pattern, repl in rules:
            new = re.sub(pattern, repl, new)
        out[new] = value
    return out


def convert_segformer_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a HyperspectralViTs ``SegformerForSemanticSegmentation_HSI`` state dict to :class:`HyperSegFormer`.

    Args:
        state_dict: Official keys (``segformer.encoder...``, ``decode_head...``), optionally ``network.``-prefixed.

    Returns:
        The same tensors under our keys (load with ``strict=True`` into a model of matching config).
    """
    return _rename(state_dict, _SEGFORMER_RULES)


def convert_efficientvit_state_dict(
    state_dict: Mapping[str, torch.Tensor], *, final_expand: bool = True
) -> dict[str, torch.Tensor]:
    """Map a HyperspectralViTs ``EfficientViTSeg`` state dict to :class:`HyperEfficientViT`.

    Args:
        state_dict: Official keys (``backbone...``, ``head...``), optionally ``network.``-prefixed.
        final_expand: Whether the head has the expand conv before the classifier (True for b0-b3);
            decides whether ``output_ops.0.op_list.0`` is that conv or the classifier.

    Returns:
        The same tensors under our keys.
    """
    out = _rename(state_dict, _EFFICIENTVIT_RULES)
    classifier = "1" if final_expand else "0"
    renamed = {}
    for key, value in out.items():
        match = re.match(r"^head\.output_ops\.0\.op_list\.(\d)\.(.*)$", key)
        if match is None:
            renamed[key] = value
        elif match.group(1) == classifier:
            renamed["head.classifier." + match.group(2).removeprefix("conv.")] = value
        else:
            renamed["head.expand." + match.group(2)] = value
    return renamed


def load_hyperspectral_vits_state_dict(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], *, strict: bool = True, source: str = "state dict"
) -> None:
    """Load an official HyperspectralViTs state dict into a HyperSegFormer or HyperEfficientViT.

    Args:
        model: The target model, built with the checkpoint's configuration (bands, sizes, switches).
        state_dict: Official keys.
        strict: Require an exact key match after conversion.
        source: Name of the checkpoint for error messages.

    Raises:
        ModelCompatibilityError: If the model type is not supported, or keys or shapes do not fit.
    """
    if isinstance(model, HyperSegFormer):
        converted = convert_segformer_state_dict(state_dict)
    elif isinstance(model, HyperEfficientViT):
        converted = convert_efficientvit_state_dict(state_dict, final_expand=model.head.expand is not None)
    else:
        raise ModelCompatibilityError(f"{source}: expected a HyperSegFormer or HyperEfficientViT, got {type(model)}.")
    model.load_state_dict_checked(converted, strict=strict, source=source)
