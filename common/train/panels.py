"""Training tiles with varying marker panels, for channel-adaptive self-supervised pretraining.

Every tile of :func:`random_panel_tiles` shows ``panel`` markers drawn at random (in random order) from
its source image's channels, so a tile store of them (channels named ``slot01``, ``slot02``, ...) holds
a different panel in every tile; the trainer's channel sampling (``hcs=True``) then keeps 1 to ``panel``
of them per batch. Each source image is standardised per channel over the whole image first, as the
napari Models widget and :func:`standardize_channels` do at inference.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from hyperplex.common.errors import InvalidParameterError
from hyperplex.common.train.scene import scene_tiles

__all__ = ["random_panel_tiles", "slot_names", "standardize_channels"]


def standardize_channels(image: np.ndarray) -> np.ndarray:
    """(C, H, W) -> float32, each channel minus its mean over the image, divided by its standard deviation.

    A constant channel becomes 0 (its deviation is taken as 1).
    """
    data = np.asarray(image, dtype=np.float64)
    mean = data.mean(axis=(1, 2), keepdims=True)
    std = data.std(axis=(1, 2), keepdims=True)
    return ((data - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)


def slot_names(count: int) -> list[str]:
    """Anonymous channel names ``slot01 .. slotNN`` of a varying-panel tile store."""
    return [f"slot{i + 1:02d}" for i in range(count)]


def random_panel_tiles(
    images: Iterable[np.ndarray], tile: int, panel: int, *, stride: int | None = None, seed: int = 0
) -> np.ndarray:
    """Cut standardised images into tiles that each show a random panel of ``panel`` of their channels.

    Args:
        images: Source images (C_i, H, W), each with at least ``panel`` channels (C_i may differ).
        tile: Tile side in pixels.
        panel: Channels per tile.
        stride: Step between tiles (default ``tile``).
        seed: Seed of the panel draws.

    Returns:
        (N, panel, tile, tile) float16 tiles, in image order.

    Raises:
        InvalidParameterError: If an image has fewer than ``panel`` channels, or no image is given.
    """
    rng = np.random.default_rng(seed)
    out = []
    for i, image in enumerate(images):
        if image.shape[0] < panel:
            raise InvalidParameterError(f"Image {i} has {image.shape[0]} channels; `panel` ({panel}) needs as many.")
        tiles = scene_tiles(standardize_channels(image), tile, stride=stride)["image"]
        picks = np.stack([rng.permutation(image.shape[0])[:panel] for _ in range(len(tiles))])
        out.append(np.take_along_axis(tiles, picks[:, :, None, None], axis=1).astype(np.float16))
    if not out:
        raise InvalidParameterError("random_panel_tiles needs at least one image.")
    return np.concatenate(out)
