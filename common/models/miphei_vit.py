"""The MIPHEI image encoder: a DINOv2-style ViT with register tokens, and its feature-map adapter.

The ViT follows the timm ``vit_*_patch14_reg4_dinov2`` layout (H-Optimus-0 is the giant one):
``patch_embed.proj``, ``cls_token``, ``reg_token``, ``pos_embed`` (patch positions only, no
prefix entry), ``blocks.{i}`` (pre-norm, LayerScale, GELU MLP or packed SwiGLU) and ``norm``.
:class:`ViTFeatureEncoder` turns any such ViT (ours or a timm model) into a ``(B, D, H/16, W/16)``
feature map, resizing bicubically from the patch-14 grid as MIPHEI-ViT does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hyperplex.common.errors import InvalidParameterError
from hyperplex.common.layers.block import Block
from hyperplex.common.layers.drop_path import drop_path_rates
from hyperplex.common.layers.glu_mlp import GluMlp
from hyperplex.common.layers.init import trunc_normal_init
from hyperplex.common.layers.pos_embed import resample_pos_embed

__all__ = ["RegisterViT", "ViTFeatureEncoder"]


class _PatchProjection(nn.Module):
    """Strided ``p x p`` convolution; like timm, trailing pixels that do not fill a patch are dropped."""

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, D, H // p, W // p)."""
        return self.proj(x)


class RegisterViT(nn.Module):
    """Vision Transformer with a CLS token, register tokens and learned patch positional embeddings.

    Args:
        img_size: Image side the positional embedding is stored for (other sizes are resampled).
        patch_size: Patch side (14 for DINOv2 models).
        in_chans: Input channels.
        embed_dim: Token width.
        depth: Blocks.
        num_heads: Attention heads.
        mlp_ratio: MLP hidden size relative to ``embed_dim`` (for SwiGLU: size of the packed ``fc1``).
        mlp: ``"mlp"`` (GELU) or ``"swiglu"`` (packed SwiGLU with SiLU, DINOv2-g / H-Optimus-0).
        reg_tokens: Number of register tokens.
        init_values: LayerScale initial gain (None disables LayerScale).
        qkv_bias: Bias on the qkv projections.
        drop_path_rate: Maximum stochastic depth (linear over blocks).

    Raises:
        InvalidParameterError: For an unknown ``mlp`` kind.
    """

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 14,
        in_chans: int = 3,
        embed_dim: int = 384,
        depth: int = 12,
        num_heads: int = 6,
        mlp_ratio: float = 4.0,
        mlp: str = "mlp",
        reg_tokens: int = 4,
        init_values: float | None = 1e-5,
        qkv_bias: bool = True,
        drop_path_rate: float = 0.0,
    ):
        super().__init__()
        if mlp not in ("mlp", "swiglu"):
            raise InvalidParameterError(f"`mlp` must be 'mlp' or 'swiglu'; got {mlp!r}.")
        self.embed_dim = embed_dim
        self.num_prefix_tokens = 1 + reg_tokens
        self.grid = (img_size // patch_size, img_size // patch_size)
        self.patch_embed = _PatchProjection(in_chans, embed_dim, patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.reg_token = nn.Parameter(torch.zeros(1, reg_tokens, embed_dim)) if reg_tokens else None
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1], embed_dim))
        rates = drop_path_rates(drop_path_rate, depth)
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, drop_path=r, init_values=init_values) for r in rates
        )
        if mlp == "swiglu":
            for block in self.blocks:
                block.mlp = GluMlp(embed_dim, int(embed_dim * mlp_ratio))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """timm-style init: truncated normal (0.02) weights, tiny CLS/register tokens."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        if self.reg_token is not None:
            nn.init.normal_(self.reg_token, std=1e-6)
        trunc_normal_init(self.blocks.modules())

    def _pos_embed(self, grid: tuple[int, int]) -> torch.Tensor:
        return resample_pos_embed(self.pos_embed, grid, num_prefix=0) if grid != self.grid else self.pos_embed

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Tokens after the final norm: (B, 1 + reg_tokens + h*w, D), prefix tokens first."""
        patches = self.patch_embed(x)
        grid = (patches.shape[-2], patches.shape[-1])
        tokens = patches.flatten(2).transpose(1, 2) + self._pos_embed(grid)
        prefix = [self.cls_token.expand(x.shape[0], -1, -1)]
        if self.reg_token is not None:
            prefix.append(self.reg_token.expand(x.shape[0], -1, -1))
        tokens = torch.cat([*prefix, tokens], dim=1)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)


def _patch_size(vit: nn.Module) -> int:
    size = vit.patch_embed.patch_size
    return int(size[0] if isinstance(size, (tuple, list)) else size)


class ViTFeatureEncoder(nn.Module):
    """Wrap a ViT (ours or timm) into a ``(B, D, H/16, W/16)`` feature map for the MIPHEI decoder.

    Prefix tokens (CLS, registers) are dropped and the patch grid is resized bicubically to the
    stride-16 grid when the patch size is not 16 (MIPHEI-ViT ``Encoder``).

    Args:
        vit: Module with ``forward_features`` (tokens), ``num_prefix_tokens``, ``embed_dim``,
            ``patch_embed.patch_size`` and ``blocks``.
    """

    def __init__(self, vit: nn.Module):
        super().__init__()
        self.vit = vit
        self.embed_dim = int(vit.embed_dim)
        self.patch_size = _patch_size(vit)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Image (B, C, H, W), H and W multiples of 16 -> features (B, D, H/16, W/16)."""
        tokens = self.vit.forward_features(x)[:, self.vit.num_prefix_tokens :]
        gh, gw = x.shape[-2] // self.patch_size, x.shape[-1] // self.patch_size
        features = tokens.transpose(1, 2).reshape(x.shape[0], self.embed_dim, gh, gw)
        target = (x.shape[-2] // 16, x.shape[-1] // 16)
        if target != (gh, gw):
            features = F.interpolate(features, size=target, mode="bicubic", align_corners=False)
        return features
