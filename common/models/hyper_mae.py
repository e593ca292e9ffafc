"""Hyper-MAE: masked autoencoding of spatial-spectral token grids (LESS ViT pretraining).

Following the official ``SpatialSpectralMAEViT`` (uiuctml/GeospatialFM): the encoder sees a random
subset of channels (``channel_mask_ratio``, at least 2 kept) and of positions (``mask_ratio``);
a LESS decoder re-inserts learned mask tokens, adds the positional-channel embedding of the full
grid and predicts every channel's pixels of every patch. The loss is the per-patch MSE averaged over
masked positions plus the per-patch MSE averaged over masked channels (:func:`hyper_mae_loss`).
With the perception-field mask on, position masking is batch-wise (one kept set for the batch), so
the spatial attention mask can be sliced.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hyperplex.common.channels import ChannelLike, ChannelSet
from hyperplex.common.errors import InvalidParameterError
from hyperplex.common.layers import LESSBlock, less_dims, positional_channel_embed
from hyperplex.common.models._base import EncoderFeatures, HyperplexModel
from hyperplex.common.models._registry import register_model
from hyperplex.common.models.less_vit import LESSViT, convert_lessvit_state_dict

__all__ = ["HyperMAE", "convert_hypermae_state_dict", "hyper_mae_loss"]


def patchify(x: torch.Tensor, patch_size: int, normalize: bool = True) -> torch.Tensor:
    """Per-channel patches (B, C, N, p * p), optionally normalised per patch (``norm_pix_loss``)."""
    b, c, h, w = x.shape
    p = patch_size
    patches = x.reshape(b, c, h // p, p, w // p, p).permute(0, 1, 2, 4, 3, 5).reshape(b, c, -1, p * p)
    if not normalize:
        return patches
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True)
    return (patches - mean) / (var + 1e-6) ** 0.5


def random_keep(
    batch: int, length: int, keep: int, *, batch_wise: bool, generator: torch.Generator | None, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MAE random masking by argsort of uniform noise.

    Returns:
        ``(ids_keep (B, keep), ids_restore (B, L), mask (B, L))`` with mask 1 = removed.
    """
    noise = torch.rand(1 if batch_wise else batch, length, generator=generator).expand(batch, length).to(device)
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    mask = torch.ones(batch, length, device=device)
    mask[:, :keep] = 0
    return ids_shuffle[:, :keep], ids_restore, torch.gather(mask, 1, ids_restore)


def hyper_mae_loss(
    pred: torch.Tensor, target: torch.Tensor, pos_mask: torch.Tensor, channel_mask: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Hyper-MAE loss: per-patch MSE averaged over masked positions plus over masked channels.

    ``e[b, c, n] = mean((pred - target)^2)`` over the patch pixels;
    ``pos_loss = sum_{b,n} mean_c(e) * pos_mask / sum(pos_mask)``,
    ``channel_loss = sum_{b,c} mean_n(e) * channel_mask / sum(channel_mask)``;
    a term with nothing masked is 0.

    Args:
        pred: Predicted patches (B, C, N, p * p).
        target: Target patches, same shape.
        pos_mask: (B, N), 1 where the position was masked.
        channel_mask: (B, C), 1 where the channel was masked.

    Returns:
        ``{"loss", "pos_loss", "channel_loss"}``.
    """
    err = (pred - target).pow(2).mean(dim=-1)  # (B, C, N)
    pos_loss = (err.mean(dim=1) * pos_mask).sum() / pos_mask.sum().clamp_min(1)
    channel_loss = (err.mean(dim=2) * channel_mask).sum() / channel_mask.sum().clamp_min(1)
    return {"loss": pos_loss + channel_loss, "pos_loss": pos_loss, "channel_loss": channel_loss}


def _gather_rows(x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """X (B, R, ...) -> (B, len(ids), ...) rows picked per sample."""
    index = ids.reshape(*ids.shape, *([1] * (x.ndim - 2))).expand(-1, -1, *x.shape[2:])
    return torch.gather(x, 1, index)


class HyperMAEDecoder(nn.Module):
    """LESS decoder: mask-token re-insertion, full-grid embedding, LESS blocks, per-channel pixel heads."""

    def __init__(self, cfg: dict[str, Any], embed_dim: int, patch_size: int, radar: bool):
        super().__init__()
        dim, heads = cfg["decoder_embed_dim"], cfg["decoder_num_heads"]
        channel_dim, spatial_dim = less_dims(dim, heads, cfg["decoder_channel_embed_dims_per_head"])
        self.decoder_embed = nn.Linear(embed_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.spatial_mask_token = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.channel_mask_token = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.decoder_blocks = nn.ModuleList(
            LESSBlock(dim, heads, channel_dim, spatial_dim, qkv_bias=True, init_values=cfg["init_values"],
                      rank=cfg["rank"]) for _ in range(cfg["decoder_depth"])
        )  # fmt: skip
        self.decoder_norm = nn.LayerNorm(dim, eps=1e-6)
        self.decoder_optical_pred = nn.Linear(dim, patch_size**2)
        self.decoder_radar_pred = nn.Linear(dim, patch_size**2) if radar else None
        for token in (self.mask_token, self.spatial_mask_token, self.channel_mask_token):
            nn.init.normal_(token, std=0.02)

    def restore(self, x: torch.Tensor, pos_restore: torch.Tensor, chan_restore: torch.Tensor) -> torch.Tensor:
        """(B, K + 1, L + 1, d) encoder grid -> (B, C + 1, N + 1, d) with mask tokens in original order."""
        b, k1, l1, d = x.shape
        n, c = pos_restore.shape[1], chan_restore.shape[1]
        fill = torch.cat([self.channel_mask_token, self.mask_token.expand(1, k1 - 1, 1, d)], dim=1)
        cols = torch.cat([x[:, :, 1:], fill.expand(b, k1, n - (l1 - 1), d)], dim=2)
        cols = torch.gather(cols, 2, pos_restore[:, None, :, None].expand(b, k1, n, d))
        x = torch.cat([x[:, :, :1], cols], dim=2)  # (B, K + 1, N + 1, d)
        fill = torch.cat([self.spatial_mask_token, self.mask_token.expand(1, 1, n, d)], dim=2)
        rows = torch.cat([x[:, 1:], fill.expand(b, c - (k1 - 1), n + 1, d)], dim=1)
        rows = _gather_rows(rows, chan_restore)
        return torch.cat([x[:, :1], rows], dim=1)

    def forward(
        self, latent: torch.Tensor, restore: tuple[torch.Tensor, torch.Tensor], embed: torch.Tensor,
        spatial_mask: torch.Tensor | None, is_radar: torch.Tensor,
    ) -> torch.Tensor:  # fmt: skip
        """Predict patches (B, C, N, p * p) from the encoder grid; ``embed`` is the (C+1, N+1, d) embedding."""
        x = self.restore(self.decoder_embed(latent), *restore) + embed
        for block in self.decoder_blocks:
            x = block(x, spatial_mask)
        x = self.decoder_norm(x)[:, 1:, 1:]
        pred = self.decoder_optical_pred(x)
        if self.decoder_radar_pred is not None and bool(is_radar.any()):
            pred = torch.where(is_radar[None, :, None, None], self.decoder_radar_pred(x), pred)
        return pred


class HyperMAE(EncoderFeatures, HyperplexModel):
    """LESS ViT encoder + LESS decoder trained by Hyper-MAE (position and channel masking).

    Calling the model returns a dict with ``loss`` (optimise it), ``pos_loss``, ``channel_loss``,
    ``pred`` and ``target`` (B, C, N, p * p), ``pos_mask`` (B, N) and ``channel_mask`` (B, C)
    (1 = masked). ``model.encoder`` is a :class:`LESSViT` to fine-tune or save on its own.

    Args:
        encoder: :class:`LESSViT` constructor arguments.
        decoder_embed_dim: Decoder token width (512 officially).
        decoder_depth: Decoder blocks (8 by default, 4 in the launch script).
        decoder_num_heads: Decoder heads (16).
        decoder_channel_embed_dims_per_head: Decoder spectral width per head.
        mask_ratio: Fraction of positions removed (0.75).
        channel_mask_ratio: Fraction of channels removed (0.5; at least 2 channels are kept).
        norm_pix_loss: Normalise each target patch to zero mean, unit variance.
    """

    def __init__(
        self,
        encoder: dict[str, Any] | None = None,
        decoder_embed_dim: int = 512,
        decoder_depth: int = 8,
        decoder_num_heads: int = 16,
        decoder_channel_embed_dims_per_head: int = 2,
        mask_ratio: float = 0.75,
        channel_mask_ratio: float = 0.5,
        norm_pix_loss: bool = True,
    ):
        super().__init__()
        for name, ratio in (("mask_ratio", mask_ratio), ("channel_mask_ratio", channel_mask_ratio)):
            if not 0.0 <= ratio < 1.0:
                raise InvalidParameterError(f"`{name}` must be in [0, 1), got {ratio}.")
        self.encoder = LESSViT(**(encoder or {}))
        self.mask_ratio, self.channel_mask_ratio, self.norm_pix_loss = mask_ratio, channel_mask_ratio, norm_pix_loss
        enc = self.encoder
        cfg = dict(
            decoder_embed_dim=decoder_embed_dim, decoder_num_heads=decoder_num_heads, decoder_depth=decoder_depth,
            decoder_channel_embed_dims_per_head=decoder_channel_embed_dims_per_head,
            init_values=(encoder or {}).get("init_values", 1.0), rank=enc.blocks[0].attn.channel_branch.rank,
        )  # fmt: skip
        self.decoder = HyperMAEDecoder(cfg, enc.embed_dim, enc.patch_size, enc.radar_patch_embed is not None)
        self.generator: torch.Generator | None = None

    def check_channels(self, channels: ChannelLike) -> ChannelSet:
        """Channels need wavelengths (see :meth:`LESSViT.check_channels`)."""
        return self.encoder.check_channels(channels)

    def num_tokens(self, num_channels: int, img_size: int | tuple[int, int]) -> int:
        """Full grid tokens, as :meth:`LESSViT.num_tokens` (the encoder sees fewer when masking)."""
        return self.encoder.num_tokens(num_channels, img_size)

    def forward_features(
        self, x: torch.Tensor, channels: ChannelLike, channel_mask: torch.Tensor | None = None, **options: Any
    ) -> torch.Tensor:
        """The encoder's token grid (B, C + 1, N + 1, D) of the unmasked input (:meth:`LESSViT.forward_features`)."""
        return self.encoder.forward_features(x, channels, channel_mask, **options)

    def feature_map(
        self, x: torch.Tensor, channels: ChannelLike, channel_mask: torch.Tensor | None = None, **options: Any
    ) -> torch.Tensor:
        """The encoder's dense features (B, D, H / p, W / p), no masking (see :meth:`LESSViT.feature_map`)."""
        return self.encoder.feature_map(x, channels, channel_mask, **options)

    def _mask(self, b: int, c: int, n: int, device: torch.device) -> tuple[tuple, tuple]:
        keep_c = c if self.channel_mask_ratio == 0 else min(c, max(int(c * (1 - self.channel_mask_ratio)), 2))
        keep_n = max(int(n * (1 - self.mask_ratio)), 1)
        batch_wise = self.encoder.use_perception_field_mask
        chan = random_keep(b, c, keep_c, batch_wise=False, generator=self.generator, device=device)
        pos = random_keep(b, n, keep_n, batch_wise=batch_wise, generator=self.generator, device=device)
        return chan, pos

    def _encode_masked(
        self, tokens: torch.Tensor, chan_keep: torch.Tensor, pos_keep: torch.Tensor, spatial_mask: torch.Tensor | None
    ) -> torch.Tensor:
        b, _, _, d = tokens.shape
        rows = torch.cat([tokens[:, :1], _gather_rows(tokens[:, 1:], chan_keep)], dim=1)
        k1 = rows.shape[1]
        cols = torch.gather(rows[:, :, 1:], 2, pos_keep[:, None, :, None].expand(b, k1, -1, d))
        grid = torch.cat([rows[:, :, :1], cols], dim=2)
        if spatial_mask is not None:  # batch-wise position masking: one kept set for the batch
            keep = torch.cat([pos_keep.new_zeros(1), pos_keep[0] + 1])
            spatial_mask = spatial_mask[keep][:, keep]
        return self.encoder.encode(grid, spatial_mask)

    def forward(
        self,
        x: torch.Tensor,
        channels: ChannelLike,
        channel_mask: torch.Tensor | None = None,
        *,
        gsd: float | None = None,
    ) -> dict[str, torch.Tensor]:
        """Mask, encode, decode and score a batch (B, C, H, W) of images with wavelengths ``channels``.

        Raises:
            ChannelMismatchError: If a per-sample channel mask is given (one band set per batch).
        """
        enc = self.encoder
        tokens, wl, grid, gsd = enc.embedded_grid(x, channels, channel_mask, gsd)
        b, c, n = x.shape[0], x.shape[1], grid[0] * grid[1]
        (chan_keep, chan_restore, chan_mask), (pos_keep, pos_restore, pos_mask) = self._mask(b, c, n, x.device)
        spatial_mask = enc.spatial_mask(grid, gsd, x.device)
        latent = self._encode_masked(tokens, chan_keep, pos_keep, spatial_mask)
        dec_dim = self.decoder.decoder_embed.out_features
        embed = positional_channel_embed(wl, grid, dec_dim, gsd=gsd).to(x)
        is_radar = (wl >= enc.radar_min_nm).to(x.device)
        pred = self.decoder(latent, (pos_restore, chan_restore), embed, spatial_mask, is_radar)
        target = patchify(x, enc.patch_size, normalize=self.norm_pix_loss)
        out = hyper_mae_loss(pred, target, pos_mask, chan_mask)
        return {**out, "pred": pred, "target": target, "pos_mask": pos_mask, "channel_mask": chan_mask}


def convert_hypermae_state_dict(state_dict: dict[str, torch.Tensor], *, radar: bool = True) -> dict[str, torch.Tensor]:
    """Map an official GeospatialFM ``SpatialSpectralMAEViT`` state dict to :class:`HyperMAE` keys.

    ``encoder.*`` keys go through :func:`~hyperplex.common.models.less_vit.convert_lessvit_state_dict`
    (patch-embedding Conv3d -> Conv2d / Linear) and keep their ``encoder.`` prefix; ``decoder.*`` keys
    (``decoder_embed``, ``mask_token``, ``spatial_mask_token``, ``channel_mask_token``,
    ``decoder_blocks.<i>.*``, ``decoder_norm``, ``decoder_optical_pred``, ``decoder_radar_pred``)
    keep their names. With ``radar=False`` the radar patch embedding and radar head are dropped.
    """
    state_dict = {k.removeprefix("module."): v for k, v in state_dict.items()}
    encoder = {k: v for k, v in state_dict.items() if k.startswith("encoder.")}
    out = {f"encoder.{k}": v for k, v in convert_lessvit_state_dict(encoder, radar=radar).items()}
    for key, value in state_dict.items():
        if key.startswith("decoder.") and (radar or not key.startswith("decoder.decoder_radar_pred.")):
            out[key] = value
    return out


def _preset(encoder: dict, decoder: dict, overrides: dict) -> HyperMAE:
    encoder = {**encoder, **overrides.pop("encoder", {})}
    return HyperMAE(encoder=encoder, **{**decoder, **overrides})


@register_model(input="hyperspectral")
def lessvit_hypermae_test(**overrides) -> HyperMAE:
    """Tiny Hyper-MAE for tests: ``lessvit_test`` encoder, decoder D=32, depth 1, 4 heads."""
    enc = dict(patch_size=8, embed_dim=32, depth=2, num_heads=4, channel_embed_dims_per_head=2, rank=2)
    dec = dict(decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=4, decoder_channel_embed_dims_per_head=2)
    return _preset({**enc, "attention_radius": 160.0}, dec, overrides)


@register_model(input="hyperspectral")
def lessvit_hypermae_base_patch16(**overrides) -> HyperMAE:
    """Paper pretraining setup: LESS ViT-B/16 encoder, decoder D=512, depth 4, 16 heads, rank 8."""
    enc = dict(embed_dim=768, depth=12, num_heads=12, channel_embed_dims_per_head=2, rank=8, init_values=1.0)
    dec = dict(decoder_embed_dim=512, decoder_depth=4, decoder_num_heads=16, decoder_channel_embed_dims_per_head=2)
    return _preset(enc, dec, overrides)
