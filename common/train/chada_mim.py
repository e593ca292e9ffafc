"""Masked channel-token modelling through the pooled feature map: ChAda-ViT pretraining that learns on a CPU.

A SimMIM-style objective (Xie et al., CVPR 2022) on ChAda-ViT's per-channel tokens, decoded from the very
features hyperplex uses downstream. A random ``mask_ratio`` of the (channel, patch) tokens of every image
has its content replaced by a learned mask token (position and channel-slot embeddings stay). The
encoder's output tokens of the visible channels are averaged per patch, which is exactly what
``feature_map`` returns at inference; a linear read-out, the dot product with a query made from a
channel's slot embedding, must give every channel's mean intensity over the patch, masked or not, from
that one pooled vector. So the feature map of a patch has to hold the intensities of all its markers,
each along its own slot's direction, and to predict the hidden ones from the others, i.e. to know the
marker combination (the type) of the cell it covers. Because the read-out is linear and a small penalty
(``feature_decay``) shrinks what it does not use, distances between feature vectors follow differences
of marker profiles, which is what a kNN on the features needs. One forward pass per step trains every
patch (no teacher, no multi-crop), unlike DINO.

Channel slots: ChAda-ViT indexes its channel embedding by slot (position in the image). In training
each image gets ``C`` distinct slots drawn at random from ``max_channels`` (``shuffle_slots``), so every
slot is trained and slots carry no marker identity: at inference (slots ``0..C-1``) any panel of up to
``max_channels`` markers in any order is what the model saw in training.

What the shipped weights showed (``benchmarks/microscopy_embeddings.py``): at the encoder's default
initialisation (slot embeddings of std 0.02, far smaller than a patch's content) the pooled feature is
nearly symmetric in the channels, so it hardly says which marker is bright (kNN cell typing near chance);
``slot_std=1`` makes every channel's token depend on its slot from the start. The default patch projection
(a random 8 x 8 filter bank) makes the tokens, and so the features, follow the pattern inside each patch
(pixel noise, blur, cell edges) more than the marker's brightness there; ``patch_init="mean"`` starts it
as a reader of the patch mean, which lifted kNN cell typing on the benchmark's foreign tissue from 0.53 to
0.83. With zero-centred token contents (standardised images, a bias-free projection) the LayerNorms make
what is specific to a channel's slot in the pooled feature an even function of its content: a marker at
-m and at +m differ only along one direction shared by every channel (their sum), so "dim" and "bright"
of one marker look alike; ``patch_offset=2`` (tokens read ``patch mean + 2``, standardised patch means lie
in about -1 to +10) makes it monotonic, which lifted the untrained starting point to the patch-mean
baseline. Training the projection moves that bias off its gain direction and lowers the score again, so
the shipped run keeps it fixed (``"mean-frozen"``). A mask ratio drawn per image from ``(0, 0.5)`` also
trains the fully visible case that inference is. The optional distance-matching term
(``distance_weight``) and longer training lowered the kNN score in short runs, so it is left off.

The preset ``chadavit_mim_tiny`` is trained with ``hyperplex train --task mae`` (the ``mae`` task takes
any model whose forward returns ``{"loss": ...}``); the trainer exports the encoder as
``encoder.safetensors``, a plain :class:`~hyperplex.common.models.ChAdaViT`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hyperplex.common.channels import ChannelLike
from hyperplex.common.errors import InvalidParameterError
from hyperplex.common.layers import resample_pos_embed
from hyperplex.common.models import ChAdaViT, EncoderFeatures, HyperplexModel, register_model
from hyperplex.common.models._channel_tokens import token_mask
from hyperplex.common.train.distance_match import patch_distance_loss

__all__ = ["PATCH_INITS", "ChAdaMIM", "chadavit_mim_tiny", "mean_patch_projection", "patch_pixels"]


def patch_pixels(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Per-channel patch pixels (B, C, N, p * p) in row-major patch order (the token order)."""
    b, c, h, w = x.shape
    p = patch_size
    return x.reshape(b, c, h // p, p, w // p, p).permute(0, 1, 2, 4, 3, 5).reshape(b, c, -1, p * p)


def _mask_range(mask_ratio: float | tuple[float, float] | list[float]) -> tuple[float, float]:
    """``(low, high)`` of the per-image mask ratio; a float ``r`` is ``(r, r)``.

    Raises:
        InvalidParameterError: For a fixed ratio outside (0, 1) or a range outside [0, 1) or reversed.
    """
    if isinstance(mask_ratio, (int, float)):
        if not 0.0 < mask_ratio < 1.0:
            raise InvalidParameterError(f"`mask_ratio` must be in (0, 1); got {mask_ratio}.")
        return float(mask_ratio), float(mask_ratio)
    low, high = (float(v) for v in mask_ratio)
    if not 0.0 <= low <= high < 1.0 or high == 0.0:
        raise InvalidParameterError(
            f"`mask_ratio` range must satisfy 0 <= low <= high < 1, high > 0; got {mask_ratio}."
        )
    return low, high


PATCH_INITS = ("default", "mean", "mean-frozen")


def mean_patch_projection(proj: nn.Conv2d, gain_std: float = 1.0, offset: float = 0.0) -> None:
    """Make a (D, 1, p, p) patch projection read only the patch mean: dimension ``d`` is ``g_d * (mean + offset)``.

    The gains ``g_d`` are drawn from N(0, ``gain_std``); the bias is ``offset * g_d``. Any within-patch
    pattern with zero mean (pixel noise, blur, an edge through the patch) then gives the same token as a
    flat patch. ``offset`` shifts standardised patch means (about -1 to +10) to positive values:
    the tokens' LayerNorms make a channel's slot-specific share of the pooled feature an even function
    of its token content, so at ``offset=0`` a channel at -m and at +m look alike per marker (only the sum
    over channels keeps the sign); with positive content that share is monotonic in the brightness.

    Raises:
        InvalidParameterError: If the projection has no bias and ``offset`` is not 0.
    """
    if proj.bias is None and offset != 0:
        raise InvalidParameterError("`offset` needs a patch projection with a bias.")
    with torch.no_grad():
        gains = torch.randn(proj.out_channels, 1, 1, 1) * gain_std
        proj.weight.copy_((gains / proj.weight[0].numel()).expand_as(proj.weight))
        if proj.bias is not None:
            proj.bias.copy_(offset * gains.flatten())


def _init_patch_projection(proj: nn.Conv2d, how: str, offset: float = 0.0) -> None:
    """Apply ``patch_init`` and ``patch_offset`` (see :class:`ChAdaMIM`) to the encoder's patch projection."""
    if how not in PATCH_INITS:
        raise InvalidParameterError(f"`patch_init` must be one of {PATCH_INITS}; got {how!r}.")
    if how == "default" and offset != 0:
        raise InvalidParameterError("`patch_offset` needs `patch_init` 'mean' or 'mean-frozen'.")
    if how != "default":
        mean_patch_projection(proj, offset=offset)
    if how == "mean-frozen":
        proj.requires_grad_(False)


class ChAdaMIM(EncoderFeatures, HyperplexModel):
    """ChAda-ViT encoder + mask token + linear pixel head; ``forward`` returns ``{"loss", "masked_mse"}``.

    Args:
        mask_ratio: Fraction of (channel, patch) tokens masked per image; a pair ``(low, high)`` draws it
            uniformly per image (``(0, 0.5)`` also trains the fully visible inference case).
        shuffle_slots: In training, give each image's channels random distinct slots.
        feature_decay: Weight of the mean squared pooled feature in the loss.
        distance_weight: Weight of :func:`~hyperplex.common.train.distance_match.patch_distance_loss`
            between the pooled features and the patch means of the image's channels (0: off).
        slot_std: Re-initialise the channel-slot embeddings with this standard deviation (None: the
            encoder's 0.02). Slots as large as the patch contents survive the token LayerNorms, which
            makes binding an intensity to its slot (what a per-marker feature needs) easier to learn.
        patch_init: ``"default"`` keeps the encoder's patch projection; ``"mean"`` makes every output
            dimension a random multiple of the patch mean (:func:`mean_patch_projection`) and
            ``"mean-frozen"`` also keeps it fixed in training, so tokens carry each channel's patch mean
            and no within-patch texture (noise, blur, cell edges), which otherwise dominates the features.
        patch_offset: With a ``"mean"`` init, tokens read ``g_d * (patch mean + patch_offset)``
            (:func:`mean_patch_projection`): standardised inputs become mostly positive token contents, so
            the pooled feature tells a dim marker from a bright one per channel, not only by their sum.
        **encoder: :class:`~hyperplex.common.models.ChAdaViT` arguments (``num_classes`` must be 0).

    Raises:
        InvalidParameterError: If a mask ratio is not in [0, 1) (a fixed one not in (0, 1)), the weight is
            negative, ``patch_init`` is unknown (or ``"default"`` with a ``patch_offset``), or a head is
            asked for.
    """

    def __init__(
        self,
        mask_ratio: float | tuple[float, float] = 0.6,
        shuffle_slots: bool = True,
        feature_decay: float = 1e-3,
        distance_weight: float = 0.0,
        slot_std: float | None = None,
        patch_init: str = "default",
        patch_offset: float = 0.0,
        **encoder,
    ):
        super().__init__()
        self.mask_range = _mask_range(mask_ratio)
        if distance_weight < 0:
            raise InvalidParameterError(f"`distance_weight` must be >= 0; got {distance_weight}.")
        if encoder.get("num_classes", 0):
            raise InvalidParameterError("ChAdaMIM pretrains the encoder only; leave `num_classes` at 0.")
        self.shuffle_slots, self.feature_decay, self.distance_weight = shuffle_slots, feature_decay, distance_weight
        self.log_scale = nn.Parameter(torch.zeros(()))  # feature-distance scale of the distance term
        self.encoder = ChAdaViT(**encoder)
        d = self.encoder.embed_dim
        self.mask_token = nn.Parameter(torch.zeros(d))
        self.query = nn.Linear(d, d)
        self.readout_bias = nn.Parameter(torch.zeros(()))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        if slot_std is not None:
            nn.init.normal_(self.encoder.channel_token, std=slot_std)
        _init_patch_projection(self.encoder.patch_embed.proj, patch_init, patch_offset)

    # ------------------------------------------------------------------ contract: the encoder's
    def forward_features(
        self, x: torch.Tensor, channels: ChannelLike, channel_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The encoder's tokens (no masking)."""
        return self.encoder.forward_features(x, channels, channel_mask)

    def feature_map(
        self, x: torch.Tensor, channels: ChannelLike, channel_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The encoder's dense features (B, D, H / p, W / p)."""
        return self.encoder.feature_map(x, channels, channel_mask)

    def check_channels(self, channels: ChannelLike):
        """The encoder's check (at most ``max_channels`` channels)."""
        return self.encoder.check_channels(channels)

    # ------------------------------------------------------------------ masked modelling
    def _slots(self, b: int, c: int, device: torch.device) -> torch.Tensor:
        """(B, C) slot per channel: random distinct slots in training, ``0..C-1`` otherwise."""
        if self.training and self.shuffle_slots:
            return torch.argsort(torch.rand(b, self.encoder.max_channels), dim=1)[:, :c].to(device)
        return torch.arange(c, device=device).expand(b, c)

    def _tokens(self, x: torch.Tensor, masked: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        """CLS + channel-major tokens with masked contents replaced by the mask token."""
        enc = self.encoder
        b, h, w = x.shape[0], x.shape[2], x.shape[3]
        grid = (h // enc.patch_size, w // enc.patch_size)
        pos = enc.pos_embed if grid == enc.grid else resample_pos_embed(enc.pos_embed, grid)
        content = torch.where(masked[..., None], self.mask_token.to(x.dtype), enc.patch_embed(x))  # (B, C, N, D)
        tokens = content + pos[:, None, 1:, :] + enc.channel_token[slots][:, :, None, :]
        cls = (enc.cls_token + pos[:, :1]).expand(b, -1, -1)
        return enc.pos_drop(torch.cat([cls, tokens.flatten(1, 2)], dim=1))

    def _pooled(self, x: torch.Tensor, masked: torch.Tensor, present: torch.Tensor, slots: torch.Tensor):
        """Per-patch mean (B, N, D) of the output tokens of the visible present channels."""
        enc = self.encoder
        b, c, n = masked.shape
        seq = self._tokens(x, masked, slots)
        attn = token_mask(present, n)
        for block in enc.blocks:
            seq = block(seq, attn_mask=attn)
        tokens = enc.norm(seq)[:, 1:].reshape(b, c, n, -1)
        weight = (present[:, :, None] & ~masked).to(tokens.dtype)[..., None]  # (B, C, N, 1)
        return (tokens * weight).sum(1) / weight.sum(1).clamp_min(1)

    def forward(
        self, x: torch.Tensor, channels: ChannelLike, channel_mask: torch.Tensor | None = None, **options
    ) -> dict[str, torch.Tensor]:
        """Patch-mean reconstruction loss of a batch (B, C, H, W) of standardised images from its pooled features.

        Args:
            x: Images; absent channels (``channel_mask`` False) are left out of pooling and loss.
            channels: Their channels (at most ``max_channels``).
            channel_mask: Optional (B, C) bool, True where the sample has the channel.
            **options: Ignored (the model contract's extra options).

        Returns:
            ``{"loss"}``: mean squared error of the patch means over all present tokens plus the feature
            penalty; ``masked_mse`` and ``visible_mse``: the error over the masked and the visible tokens.
        """
        self.encoder.check_channels(channels)
        b, c, h, w = x.shape
        p = self.encoder.patch_size
        n = (h // p) * (w // p)
        present = torch.ones(b, c, dtype=torch.bool, device=x.device) if channel_mask is None else channel_mask.bool()
        masked = self._mask(b, c, n, x.device) & present[:, :, None]
        slots = self._slots(b, c, x.device)
        pooled = self._pooled(x, masked, present, slots)  # (B, N, D)
        queries = self.query(self.encoder.channel_token[slots])  # (B, C, D)
        pred = torch.einsum("bnd,bcd->bcn", pooled, queries) / pooled.shape[-1] ** 0.5 + self.readout_bias
        target = patch_pixels(x, p).float().mean(-1)  # (B, C, N)
        err = F.mse_loss(pred.float(), target, reduction="none")
        hidden, shown = masked.float(), (present[:, :, None] & ~masked).float()
        parts = {k: (err * m).sum() / m.sum().clamp_min(1) for k, m in (("masked_mse", hidden), ("visible_mse", shown))}
        loss = (err * (hidden + shown)).sum() / (hidden + shown).sum().clamp_min(1)
        loss = loss + self.feature_decay * pooled.float().pow(2).mean()
        if self.distance_weight > 0:
            parts["distance_mse"] = patch_distance_loss(pooled, target, present, self.log_scale)
            loss = loss + self.distance_weight * parts["distance_mse"]
        return {"loss": loss, **{k: v.detach() for k, v in parts.items()}}

    def _mask(self, b: int, c: int, n: int, device: torch.device) -> torch.Tensor:
        """(B, C, N) bool: tokens to mask, with a ratio drawn per image from ``mask_range``."""
        low, high = self.mask_range
        ratio = low + (high - low) * torch.rand(b, 1, 1, device=device)
        return torch.rand(b, c, n, device=device) < ratio


@register_model(sized_by="max_channels")  # no input kind: a training wrapper, never offered for inference
def chadavit_mim_tiny(**overrides) -> ChAdaMIM:
    """Masked channel-token pretraining of ``chadavit_tiny_patch8`` (D=128, depth 4, 4 heads, patch 8, 64 slots)."""
    cfg = dict(max_channels=64, img_size=32, patch_size=8, embed_dim=128, depth=4, num_heads=4, ffn_dim=512)
    return ChAdaMIM(**{**cfg, **overrides})
