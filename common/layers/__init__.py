"""Reusable network building blocks (one concept per module), shared by the model families.

Attention everywhere uses fused :func:`torch.nn.functional.scaled_dot_product_attention`.
"""

from hyperplex.common.layers.attention import Attention, key_padding_to_attn_mask
from hyperplex.common.layers.block import Block, vit_blocks
from hyperplex.common.layers.drop_path import DropPath, drop_path, drop_path_rates
from hyperplex.common.layers.init import trunc_normal_init
from hyperplex.common.layers.layer_scale import LayerScale
from hyperplex.common.layers.less_block import LESSBlock, LowDimPool, less_dims
from hyperplex.common.layers.low_rank_attention import (
    AttentionBranch,
    AttentionPool,
    LowRankAttention,
    perception_field_mask,
)
from hyperplex.common.layers.mlp import Mlp, activation
from hyperplex.common.layers.patch_embed import PatchEmbed, PatchEmbedPerChannel, check_patchable
from hyperplex.common.layers.pos_embed import positional_channel_embed, resample_pos_embed, sincos_1d, sincos_2d

__all__ = [
    "trunc_normal_init",
    "vit_blocks",
    "Attention",
    "AttentionBranch",
    "AttentionPool",
    "Block",
    "DropPath",
    "LESSBlock",
    "LayerScale",
    "LowDimPool",
    "LowRankAttention",
    "Mlp",
    "PatchEmbed",
    "PatchEmbedPerChannel",
    "activation",
    "check_patchable",
    "drop_path",
    "drop_path_rates",
    "key_padding_to_attn_mask",
    "less_dims",
    "perception_field_mask",
    "positional_channel_embed",
    "resample_pos_embed",
    "sincos_1d",
    "sincos_2d",
]
