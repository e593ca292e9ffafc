"""Reusable network building blocks (one concept per module), shared by the model families.

Attention everywhere uses fused :func:`torch.nn.functional.scaled_dot_product_attention`.
"""

from hyperplex.common.layers.attention import Attention, key_padding_to_attn_mask
from hyperplex.common.layers.block import Block
from hyperplex.common.layers.drop_path import DropPath, drop_path
from hyperplex.common.layers.layer_scale import LayerScale
from hyperplex.common.layers.mlp import Mlp, activation
from hyperplex.common.layers.patch_embed import PatchEmbed, PatchEmbedPerChannel, check_patchable
from hyperplex.common.layers.pos_embed import resample_pos_embed, sincos_1d, sincos_2d

__all__ = [
    "Attention",
    "Block",
    "DropPath",
    "LayerScale",
    "Mlp",
    "PatchEmbed",
    "PatchEmbedPerChannel",
    "activation",
    "check_patchable",
    "drop_path",
    "key_padding_to_attn_mask",
    "resample_pos_embed",
    "sincos_1d",
    "sincos_2d",
]
