"""Whole-slide-scale MIPHEI inference: tile an H&E image, predict markers, blend the tiles back.

``predict_markers(model, rgb, tile_size, overlap)`` reads the image tile by tile (numpy, memmap,
zarr, dask or xarray), so images larger than memory work; overlapping predictions are blended with
tapered weights by :func:`hyperplex.common.tiling.apply_tiled`, which removes tile seams.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from hyperplex.common.arrays import as_channel_first
from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import ChannelMismatchError, InvalidParameterError
from hyperplex.common.tiling import Window, apply_tiled

__all__ = ["predict_markers"]


def _input_scale(dtype: Any, input_scale: float | None) -> float:
    """Divisor bringing raw values to [0, 1]: given, else 255 for integer images and 1 for floats."""
    if input_scale is not None:
        if input_scale <= 0:
            raise InvalidParameterError(f"`input_scale` must be positive; got {input_scale}.")
        return float(input_scale)
    return 255.0 if np.issubdtype(np.dtype(dtype), np.integer) else 1.0


def _padded(x: torch.Tensor, size: int | None) -> tuple[torch.Tensor, int, int]:
    """Pad (edge replication) to ``size`` x ``size`` when given, else up to multiples of 16."""
    h, w = x.shape[-2:]
    ph, pw = (size - h, size - w) if size else (-h % 16, -w % 16)
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="replicate")
    return x, h, w


def _tile_predictor(model: torch.nn.Module, scale: float, normalize: bool, device: torch.device):
    fixed = getattr(model, "fixed_input_size", None)

    def predict(tile: np.ndarray, window: Window) -> np.ndarray:
        x = torch.as_tensor(np.asarray(tile, dtype=np.float32) / scale, device=device)[None]
        x, h, w = _padded(x, fixed)
        if normalize:
            x = model.normalize(x)
        out = model(x)[0, :, :h, :w]
        return out.float().cpu().numpy()

    return predict


def predict_markers(
    model: torch.nn.Module,
    rgb: Any,
    tile_size: int = 256,
    overlap: int = 32,
    *,
    channel_axis: int = 0,
    input_scale: float | None = None,
    normalize: bool = True,
    device: str | torch.device | None = None,
) -> tuple[np.ndarray, ChannelSet]:
    """Predict mIF marker channels for a (large) H&E RGB image with a MIPHEI model.

    Args:
        model: A :class:`~hyperplex.common.models.miphei.MIPHEI` model (any module with
            ``output_channels``, ``normalize`` and ``in_chans`` works).
        rgb: The image, ``(3, H, W)`` by default; numpy, memmap, zarr, dask or xarray.
        tile_size: Tile side in pixels; a multiple of 16 (the model's training size is best). Models
            with a fixed-size (timm) encoder need ``tile_size == model.fixed_input_size``; edge tiles are
            padded to it.
        overlap: Pixels shared by neighbouring tiles (blended with linear ramps).
        channel_axis: Axis of ``rgb`` holding the colour channels (``-1`` for ``(H, W, 3)``).
        input_scale: Divisor bringing pixel values to [0, 1]; default 255 for integer images, 1 for floats.
        normalize: Apply ``model.normalize`` (the encoder's mean/std) after scaling.
        device: Where to run the model (default: where its parameters are).

    Returns:
        ``(markers, channels)``: a float32 ``(M, H, W)`` array of the model's output scale (tanh,
        [-1, 1]) and the ChannelSet of marker names (``model.output_channels``).

    Raises:
        ChannelMismatchError: If the image does not have the model's number of channels.
        InvalidParameterError: For a tile size that is not a multiple of 16, or a bad overlap/scale.
    """
    if tile_size % 16:
        raise InvalidParameterError(f"`tile_size` must be a multiple of 16 for MIPHEI; got {tile_size}.")
    fixed = getattr(model, "fixed_input_size", None)
    if fixed is not None and tile_size != fixed:
        raise InvalidParameterError(f"This model's encoder only accepts {fixed}x{fixed} images; use tile_size={fixed}.")
    data = as_channel_first(rgb, channel_axis, name="rgb")
    if data.shape[0] != model.in_chans:
        raise ChannelMismatchError(
            f"`rgb` has {data.shape[0]} channels along axis {channel_axis} but the model takes {model.in_chans}; "
            "pass an RGB image and set channel_axis (e.g. -1 for (H, W, 3) arrays)."
        )
    device = torch.device(device) if device is not None else next(model.parameters()).device
    channels = model.output_channels
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            fn = _tile_predictor(model.to(device), _input_scale(data.dtype, input_scale), normalize, device)
            markers = apply_tiled(fn, data, tile_size, overlap, out_channels=len(channels), desc="MIPHEI tiles")
    finally:
        model.train(was_training)
    return markers, channels
