"""Distance matching: make the distances between patch features follow those between the patches' marker profiles.

A self-supervised metric-shaping term (no labels: the target is computed from the input). For every image,
the Euclidean distances between the features of its patches, times one learned global scale, are
regressed onto the root-mean-square differences of the same patches' channel means over the channels the
image has. Only pairs within one image are compared: with channel slots drawn at random per image, a
channel means nothing across images. A feature map trained this way is, up to one scale, an isometry of
the patch-mean profile, so distance-based read-outs (kNN, clustering, PCA colours) see the marker
differences rather than whatever directions a reconstruction head ignores.
"""

from __future__ import annotations

import torch

__all__ = ["pairwise_distances", "patch_distance_loss", "profile_distances"]

_EPS = 1e-6


def pairwise_distances(features: torch.Tensor) -> torch.Tensor:
    """(B, N, D) -> (B, N, N) Euclidean distances, smooth at 0 (``sqrt(d^2 + 1e-6)``)."""
    sq = (features[:, :, None, :] - features[:, None, :, :]).pow(2).sum(-1)
    return (sq + _EPS).sqrt()


def profile_distances(profiles: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Root-mean-square difference over the present channels between patches.

    Args:
        profiles: (B, C, N) per-channel patch means.
        present: (B, C) bool, True where the image has the channel.

    Returns:
        (B, N, N) distances (0 for an image with no channel).
    """
    weight = present.to(profiles.dtype)[:, :, None, None]
    diff = (profiles[:, :, :, None] - profiles[:, :, None, :]).pow(2) * weight
    count = weight.sum(1).clamp_min(1)
    return (diff.sum(1) / count + _EPS).sqrt()


def patch_distance_loss(
    features: torch.Tensor, profiles: torch.Tensor, present: torch.Tensor, log_scale: torch.Tensor
) -> torch.Tensor:
    """Mean squared error between scaled feature distances and profile distances, over the pairs of each image.

    Args:
        features: (B, N, D) patch features.
        profiles: (B, C, N) per-channel patch means (the target).
        present: (B, C) bool channel presence.
        log_scale: Scalar; feature distances are multiplied by ``exp(log_scale) / sqrt(D)``.

    Returns:
        Scalar loss (pairs i < j of images with at least one channel).
    """
    n, d = features.shape[1:]
    pred = pairwise_distances(features.float()) * (log_scale.float().exp() / d**0.5)
    target = profile_distances(profiles.float(), present)
    pairs = torch.ones(n, n, dtype=torch.bool, device=features.device).triu(1)[None]
    keep = (pairs & present.any(1)[:, None, None]).to(pred.dtype)
    return ((pred - target).pow(2) * keep).sum() / keep.sum().clamp_min(1)
