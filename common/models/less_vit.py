"""LESS ViT: spatial-spectral tokens with low-rank (Kronecker) spatial x spectral attention.

Si, Wan, Do, Vasisht, Zhao, Hamann, "Towards a Unified Copernicus Foundation Model ..." / LESS ViT,
arXiv 2503.12843 (official code: uiuctml/GeospatialFM, ``spatial_spectral_low_rank_vit.py``).

Every channel of every patch is a token, kept as a grid ``(B, C + 1, N + 1, D)`` with spectral-CLS
row, spatial-CLS column and a global CLS at ``[0, 0]``. Channels are identified only by their centre
wavelength (nm) through a fixed sin-cos embedding, so any band set works with no per-channel
parameters; positions are encoded as sin-cos of ``patch index * GSD``. Blocks use LESS low-rank
attention (:mod:`hyperplex.common.layers.low_rank_attention`) with an optional perception-field mask
restricting spatial attention to a radius in metres. Memory and time grow linearly in C.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from hyperplex.common.channels import ChannelLike, ChannelSet
from hyperplex.common.errors import ChannelMismatchError
from hyperplex.common.layers import (
    LESSBlock,
    check_patchable,
    drop_path_rates,
    less_dims,
    perception_field_mask,
    positional_channel_embed,
)
from hyperplex.common.models._base import HyperplexModel, PatchFeatures
from hyperplex.common.models._registry import register_model

__all__ = [
    "LESSViT",
    "SpectralPatchEmbed",
    "convert_lessvit_state_dict",
    "lessvit_from_official",
    "official_pos_chan_embed",
]


class SpectralPatchEmbed(nn.Module):
    """Shared per-channel patch embedding ``Conv(1, 2D, p) -> ReLU -> Linear(2D, D)`` (official layout).

    Args:
        embed_dim: Token width ``D``.
        patch_size: Patch side in pixels.
    """

    def __init__(self, embed_dim: int, patch_size: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj1 = nn.Conv2d(1, 2 * embed_dim, patch_size, stride=patch_size)
        self.act = nn.ReLU()
        self.proj2 = nn.Linear(2 * embed_dim, embed_dim)
        nn.init.xavier_uniform_(self.proj1.weight.view(self.proj1.weight.shape[0], -1))
        nn.init.xavier_uniform_(self.proj2.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed (B, C, H, W) into (B, C, N, D)."""
        check_patchable(x, self.patch_size)
        b, c, h, w = x.shape
        tokens = self.act(self.proj1(x.reshape(b * c, 1, h, w))).flatten(2).transpose(1, 2)
        tokens = self.proj2(tokens)
        return tokens.reshape(b, c, tokens.shape[1], tokens.shape[2])


class LESSViT(PatchFeatures, HyperplexModel):
    """LESS ViT encoder with a linear head on the global CLS token.

    Args:
        patch_size: Patch side in pixels.
        embed_dim: Token width.
        depth: Number of LESS blocks.
        num_heads: Attention heads.
        channel_embed_dims_per_head: Spectral width per head (2 in the paper's launch script).
        rank: Query/key pairs per attention branch (8 in the paper).
        mlp_ratio: MLP hidden size relative to ``embed_dim``.
        qkv_bias: Bias on attention projections.
        drop_path_rate: Stochastic depth at the last block (linear from 0).
        attn_drop_rate: Attention dropout.
        proj_drop_rate: Projection / MLP dropout.
        init_values: LayerScale initial gain (None: off).
        use_perception_field_mask: Restrict spatial attention to ``attention_radius`` metres.
        attention_radius: Radius in metres (640 officially).
        gsd: Default ground sampling distance (m / pixel) when ``forward`` gets none.
        radar: Add a second patch embedding for SAR channels (wavelength >= ``radar_min_nm``).
        radar_min_nm: Pseudo-wavelength threshold of SAR channels (S1 uses 5500 / 5700 nm).
        num_classes: Linear head size on the global CLS (0: return the CLS embedding).
        norm_eps: LayerNorm epsilon.
        embed_dtype: Precision of the fixed sin-cos positional-channel embedding: ``"float64"`` (default,
            rounded to float32 once) or ``"float32"``, built step by step in float32 numpy as the official
            ``pos_chan_embed.py`` (differs by up to ~1e-4 at SAR pseudo-wavelengths); set by
            :func:`lessvit_from_official`.
    """

    def __init__(
        self,
        patch_size: int = 16,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        channel_embed_dims_per_head: int = 2,
        rank: int = 8,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_path_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        proj_drop_rate: float = 0.0,
        init_values: float | None = 1.0,
        use_perception_field_mask: bool = True,
        attention_radius: float = 640.0,
        gsd: float = 10.0,
        radar: bool = False,
        radar_min_nm: float = 5000.0,
        num_classes: int = 0,
        norm_eps: float = 1e-6,
        embed_dtype: str = "float64",
    ):
        super().__init__()
        if embed_dtype not in ("float64", "float32"):
            raise ValueError(f"`embed_dtype` must be 'float64' or 'float32'; got {embed_dtype!r}.")
        self.embed_dtype = embed_dtype
        self.patch_size, self.embed_dim, self.gsd = patch_size, embed_dim, gsd
        self.use_perception_field_mask, self.attention_radius = use_perception_field_mask, attention_radius
        self.radar_min_nm = radar_min_nm
        channel_dim, spatial_dim = less_dims(embed_dim, num_heads, channel_embed_dims_per_head)
        self.optical_patch_embed = SpectralPatchEmbed(embed_dim, patch_size)
        self.radar_patch_embed = SpectralPatchEmbed(embed_dim, patch_size) if radar else None
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.spatial_cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.channel_cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        rates = drop_path_rates(drop_path_rate, depth)
        self.blocks = nn.ModuleList(
            LESSBlock(
                embed_dim, num_heads, channel_dim, spatial_dim, mlp_ratio, qkv_bias, proj_drop_rate,
                attn_drop_rate, r, init_values, rank, norm_eps,
            )
            for r in rates
        )  # fmt: skip
        self.norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Official initialisation: Xavier-uniform linear weights, zero biases, normal(0.02) CLS tokens."""
        for module in self.blocks.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        for token in (self.cls_token, self.spatial_cls_token, self.channel_cls_token):
            nn.init.normal_(token, std=0.02)

    # ------------------------------------------------------------------ channels
    def wavelengths(self, channels: ChannelLike, count: int | None = None) -> torch.Tensor:
        """Centre wavelengths (nm) of ``channels`` as a float64 tensor.

        Raises:
            ChannelMismatchError: If the channels have no wavelengths, or SAR channels are given to
                a model without a radar embedding.
        """
        cs = ChannelSet.coerce(channels, count=count)
        wl = torch.as_tensor(cs.require_wavelengths("LESS ViT"), dtype=torch.float64)
        if self.radar_patch_embed is None and bool((wl >= self.radar_min_nm).any()):
            raise ChannelMismatchError(
                f"Channels at >= {self.radar_min_nm} nm are SAR pseudo-wavelengths but this LESS ViT has no "
                "radar embedding; build it with radar=True."
            )
        return wl

    def check_channels(self, channels: ChannelLike) -> ChannelSet:
        """Check the channels carry wavelengths (any band set works); return the ChannelSet."""
        self.wavelengths(channels)
        return ChannelSet.coerce(channels)

    def num_tokens(self, num_channels: int, img_size: int | tuple[int, int]) -> int:
        """``(C + 1) * (N + 1)`` grid tokens (attention itself runs over C + 1 and N + 1 tokens)."""
        h, w = (img_size, img_size) if isinstance(img_size, int) else img_size
        return (num_channels + 1) * ((h // self.patch_size) * (w // self.patch_size) + 1)

    # ------------------------------------------------------------------ pieces
    def patch_tokens(self, x: torch.Tensor, wavelengths: torch.Tensor) -> torch.Tensor:
        """Per-channel patch tokens (B, C, N, D), SAR channels through the radar embedding."""
        if self.radar_patch_embed is None:
            return self.optical_patch_embed(x)
        is_radar = (wavelengths >= self.radar_min_nm).to(x.device)
        tokens = self.optical_patch_embed(x[:, ~is_radar])
        out = tokens.new_empty((x.shape[0], x.shape[1], *tokens.shape[2:]))
        out[:, ~is_radar] = tokens
        if bool(is_radar.any()):
            out[:, is_radar] = self.radar_patch_embed(x[:, is_radar])
        return out

    def token_grid(self, x: torch.Tensor, wavelengths: torch.Tensor) -> torch.Tensor:
        """Patch tokens framed by the CLS row/column: (B, C + 1, N + 1, D), no embeddings added."""
        tokens = self.patch_tokens(x, wavelengths)
        b, c, n, d = tokens.shape
        tokens = torch.cat([self.channel_cls_token.expand(b, 1, n, d), tokens], dim=1)  # spectral-CLS row
        col = torch.cat([self.cls_token.expand(b, 1, d), self.spatial_cls_token.expand(b, c, d)], dim=1)
        return torch.cat([col[:, :, None], tokens], dim=2)  # spatial-CLS column, global CLS at [0, 0]

    def pos_chan_embed(self, wavelengths: torch.Tensor, grid: tuple[int, int], gsd: float) -> torch.Tensor:
        """Fixed positional-channel embedding (C + 1, N + 1, D) for these wavelengths and GSD."""
        if self.embed_dtype == "float32":
            return official_pos_chan_embed(wavelengths, grid, self.embed_dim, gsd)
        return positional_channel_embed(wavelengths, grid, self.embed_dim, gsd=gsd)

    def spatial_mask(self, grid: tuple[int, int], gsd: float, device: torch.device) -> torch.Tensor | None:
        """Perception-field mask (N + 1, N + 1) including CLS, or None when disabled."""
        if not self.use_perception_field_mask:
            return None
        return perception_field_mask(grid, self.patch_size, gsd, self.attention_radius).to(device)

    def encode(self, grid_tokens: torch.Tensor, spatial_mask: torch.Tensor | None) -> torch.Tensor:
        """Run the blocks and final norm on an embedded grid (B, C' + 1, N' + 1, D)."""
        for block in self.blocks:
            grid_tokens = block(grid_tokens, spatial_mask)
        return self.norm(grid_tokens)

    # ------------------------------------------------------------------ forward
    def embedded_grid(
        self, x: torch.Tensor, channels: ChannelLike, channel_mask: torch.Tensor | None, gsd: float | None
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int], float]:
        """Embedded token grid before the blocks, with what it was built from.

        Returns:
            ``(tokens (B, C + 1, N + 1, D), wavelengths (C,), patch grid, gsd)``.

        Raises:
            ChannelMismatchError: If a per-sample channel mask is given, or the channels have no wavelengths.
        """
        if channel_mask is not None and not bool(channel_mask.all()):
            raise ChannelMismatchError(
                f"{type(self).__name__} runs one band set per batch; split the batch by band set instead of "
                "masking channels."
            )
        gsd = self.gsd if gsd is None else float(gsd)
        wl = self.wavelengths(channels, count=x.shape[1])
        grid = check_patchable(x, self.patch_size)
        return self.token_grid(x, wl) + self.pos_chan_embed(wl, grid, gsd).to(x), wl, grid, gsd

    def forward_features(
        self,
        x: torch.Tensor,
        channels: ChannelLike,
        channel_mask: torch.Tensor | None = None,
        *,
        gsd: float | None = None,
    ) -> torch.Tensor:
        """Normalised token grid (B, C + 1, N + 1, D); ``forward(x, channels, gsd=...)`` applies the head to it.

        Args:
            x: Images (B, C, H, W); all samples share the band set.
            channels: Wavelengths in nm (ChannelSet or list of floats), one per channel.
            channel_mask: Not supported (LESS ViT needs one band set per batch); must be None or all True.
            gsd: Ground sampling distance in m / pixel (default: the model's ``gsd``).

        Raises:
            ChannelMismatchError: If a per-sample channel mask is given.
        """
        tokens, _, grid, gsd = self.embedded_grid(x, channels, channel_mask, gsd)
        return self.encode(tokens, self.spatial_mask(grid, gsd, x.device))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Head on the global CLS token ``[:, 0, 0]`` (identity when ``num_classes`` is 0)."""
        return self.head(features[:, 0, 0])

    def feature_map(
        self, x: torch.Tensor, channels: ChannelLike, channel_mask: torch.Tensor | None = None, **options: Any
    ) -> torch.Tensor:
        """Dense features (B, D, H / p, W / p) from the spectral-CLS row (the official segmentation input).

        ``options`` (``gsd``) go to :meth:`forward_features`.
        """
        grid = check_patchable(x, self.patch_size)
        row = self.forward_features(x, channels, channel_mask, **options)[:, 0, 1:]  # (B, N, D)
        return row.transpose(1, 2).reshape(x.shape[0], -1, *grid)


def _sincos_float32(dim: int, positions: np.ndarray) -> np.ndarray:
    """The official ``get_1d_sincos_pos_embed_from_grid``, in float32 numpy: (M,) -> (M, dim)."""
    omega = np.arange(dim // 2, dtype=np.float32)
    omega /= dim / 2.0
    omega = 1.0 / 10000**omega
    angles = np.einsum("m,d->md", positions.reshape(-1), omega)
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def official_pos_chan_embed(wavelengths: torch.Tensor, grid: tuple[int, int], dim: int, gsd: float) -> torch.Tensor:
    """Positional-channel embedding (C + 1, N + 1, dim) as the official code builds it, in float32 numpy.

    ``(channel + position) / 2`` with zero CLS row and column; positions are ``index * gsd`` with the
    column coordinate in the first half of the width (``get_2d_sincos_pos_embed``). Any grid shape
    (the official code takes square grids only).
    """
    chan = _sincos_float32(dim, wavelengths.detach().cpu().numpy().astype(np.float32))
    coords = np.meshgrid(np.arange(grid[1], dtype=np.float32), np.arange(grid[0], dtype=np.float32))
    coords = np.stack(coords, axis=0) * gsd
    pos = np.concatenate([_sincos_float32(dim // 2, coords[0]), _sincos_float32(dim // 2, coords[1])], axis=1)
    chan_t = torch.cat([torch.zeros(1, dim), torch.from_numpy(chan).float()])
    pos_t = torch.cat([torch.zeros(1, dim), torch.from_numpy(pos).float()])
    return (chan_t[:, None, :] + pos_t[None, :, :]) / 2


def lessvit_from_official(state_dict: dict[str, torch.Tensor], **overrides: Any) -> LESSViT:
    """A :class:`LESSViT` that computes what the official GeospatialFM encoder does with these weights.

    Read from the weights: width, depth, patch size, MLP ratio, LayerScale, radar embedding. Not in
    the weights, so taken from ``overrides`` or the paper's launch script: ``num_heads`` (width / 64),
    ``channel_embed_dims_per_head`` (2), ``rank`` (8), ``use_perception_field_mask`` (True),
    ``attention_radius`` (640 m). Sets ``embed_dtype="float32"`` (the official float32 numpy embedding).
    Converted with :func:`convert_lessvit_state_dict` and loaded strictly.

    Raises:
        ModelCompatibilityError: If the weights do not fit the model built (e.g. another ``rank``).
    """
    radar = any(k.startswith("radar_patch_embed.") for k in state_dict)
    sd = convert_lessvit_state_dict(state_dict, radar=radar)
    dim = sd["cls_token"].shape[-1]
    config: dict[str, Any] = dict(
        patch_size=sd["optical_patch_embed.proj1.weight"].shape[-1],
        embed_dim=dim,
        depth=len({k.split(".")[1] for k in sd if k.startswith("blocks.")}),
        num_heads=max(dim // 64, 1),
        mlp_ratio=sd["blocks.0.mlp.fc1.weight"].shape[0] / dim,
        init_values=1.0 if "blocks.0.ls1.gamma" in sd else None,
        radar=radar,
        embed_dtype="float32",
    )
    model = LESSViT(**{**config, **overrides})
    model.load_state_dict_checked(sd, strict=True, source="official LESS ViT state dict")
    return model


def convert_lessvit_state_dict(state_dict: dict[str, torch.Tensor], *, radar: bool = True) -> dict[str, torch.Tensor]:
    """Map an official GeospatialFM ``SpatialSpectralLowRankViTEncoder`` state dict to :class:`LESSViT`.

    Mapping:

    - ``{optical,radar}_patch_embed.proj.0.weight`` Conv3d (2D, 1, 1, p, p) -> ``*.proj1.weight`` Conv2d
      (2D, 1, p, p); ``proj.2.weight`` Conv3d (D, 2D, 1, 1, 1) -> ``*.proj2.weight`` Linear (D, 2D);
      biases renamed likewise.
    - ``cls_token``, ``spatial_cls_token``, ``channel_cls_token``, ``norm``, and every
      ``blocks.<i>.*`` key (``norm1``, ``channel_norm``, ``spatial_norm``, ``low_dim_pool.*``,
      ``attn.{channel,spatial}_branch.{qk,v}``, ``attn.proj``, ``ls1/ls2.gamma``, ``norm2``, ``mlp.fc1/fc2``)
      keep their names (our modules mirror the official ones).
    - ``encoder.`` / ``module.`` prefixes are stripped; ``decoder.*`` keys (a Hyper-MAE checkpoint) are dropped.
    - With ``radar=False`` the ``radar_patch_embed.*`` keys are dropped (build the model with
      ``radar=True`` to keep them).
    """
    out = {}
    for key, value in state_dict.items():
        for prefix in ("module.", "encoder."):
            key = key[len(prefix) :] if key.startswith(prefix) else key
        if key.startswith("decoder.") or (not radar and key.startswith("radar_patch_embed.")):
            continue
        key, value = _convert_patch_embed_key(key, value)
        out[key] = value.contiguous()
    return out


def _convert_patch_embed_key(key: str, value: torch.Tensor) -> tuple[str, torch.Tensor]:
    if ".proj.0." in key:
        return key.replace(".proj.0.", ".proj1."), value[:, :, 0] if value.ndim == 5 else value
    if ".proj.2." in key:
        return key.replace(".proj.2.", ".proj2."), value.reshape(value.shape[0], -1) if value.ndim == 5 else value
    return key, value


def _preset(defaults: dict, overrides: dict) -> LESSViT:
    return LESSViT(**{**defaults, **overrides})


@register_model(input="hyperspectral")
def lessvit_test(**overrides) -> LESSViT:
    """Tiny LESS ViT for tests: D=32, depth 2, 4 heads (c_hd 2, s_hd 4), rank 2, patch 8."""
    cfg = dict(patch_size=8, embed_dim=32, depth=2, num_heads=4, channel_embed_dims_per_head=2, rank=2, gsd=10.0)
    return _preset({**cfg, "attention_radius": 160.0}, overrides)


@register_model(input="hyperspectral")
def lessvit_small_patch16(**overrides) -> LESSViT:
    """LESS ViT-S/16: D=384, depth 12, 6 heads, c_hd 2 (s_hd 32), rank 8, LayerScale 1.0."""
    return _preset(dict(embed_dim=384, depth=12, num_heads=6), overrides)


@register_model(input="hyperspectral")
def lessvit_base_patch16(**overrides) -> LESSViT:
    """LESS ViT-B/16 as in the paper's launch script: D=768, depth 12, 12 heads, c_hd 2, rank 8."""
    return _preset(dict(embed_dim=768, depth=12, num_heads=12), overrides)
