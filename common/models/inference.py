"""Tiled inference with any hyperplex model: dense feature maps and dense predictions of large images.

Images (numpy, memmap, zarr, dask or xarray; ``(C, H, W)`` by default) are read tile by tile, so
images larger than memory work. The image is padded (by reflection, virtually: only tiles are read)
to a multiple of the model's ``input_multiple``; tiles are multiples of it and overlap by a multiple
of the output stride, so every tile's output lands exactly on the output grid. Overlapping outputs
are blended with tapered weights (:class:`hyperplex.common.tiling.Stitcher`), which removes seams.

Every tiled function has a ``*_steps`` twin: a generator that yields ``(tiles_done, tiles_total)``
after each tile and returns the result (``StopIteration.value``), for callers that report progress
or stop between tiles (a napari worker). The plain functions drive it and report progress to a
``progress(done, total)`` callback, or to a quiet-aware progress bar when none is given.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import torch

from hyperplex.common.arrays import as_channel_first, materialize
from hyperplex.common.channels import ChannelLike, ChannelSet
from hyperplex.common.errors import ChannelMismatchError, InvalidParameterError
from hyperplex.common.models._base import HyperplexModel
from hyperplex.common.progress import progress as progress_bar
from hyperplex.common.tiling import Stitcher, Tiler, Window

__all__ = [
    "ProgressCallback",
    "Steps",
    "predict_markers",
    "predict_markers_steps",
    "run_steps",
    "tiled_feature_map",
    "tiled_feature_map_steps",
    "tiled_predict",
    "tiled_predict_steps",
]

#: ``progress(tiles_done, tiles_total)``, called after each tile.
ProgressCallback = Callable[[int, int], None]
#: A tiled run: yields ``(tiles_done, tiles_total)``, returns the result.
Steps = Generator[tuple[int, int], None, Any]
TileTransform = Callable[[np.ndarray], np.ndarray]


def run_steps(steps: Steps, progress: ProgressCallback | None = None, *, desc: str = "tiles") -> Any:
    """Drive a ``*_steps`` generator to its end and return its result.

    Args:
        steps: The generator.
        progress: Called with ``(done, total)`` after each tile; None shows a progress bar (silenced by
            :func:`hyperplex.common.progress.quiet`). An exception raised by the callback stops the run.
        desc: Progress bar label.
    """
    bar = None
    try:
        while True:
            done, total = next(steps)
            if progress is not None:
                progress(done, total)
                continue
            bar = bar or progress_bar(total=total, desc=desc, unit="tile")
            bar.update(1)
    except StopIteration as stop:
        return stop.value
    finally:
        if bar is not None:
            bar.close()


def _read_tile(data: Any, window: Window, height: int, width: int) -> np.ndarray:
    """Read a window that may run past the image edge (the excess is reflected) as float32."""
    rows, cols = window.slices
    tile = materialize(data[:, rows.start : min(rows.stop, height), cols.start : min(cols.stop, width)])
    pad_h, pad_w = window.height - tile.shape[1], window.width - tile.shape[2]
    if pad_h or pad_w:
        tile = np.pad(tile, ((0, 0), (0, pad_h), (0, pad_w)), mode="reflect" if min(tile.shape[1:]) > 1 else "edge")
    return tile.astype(np.float32, copy=False)


def _layouts(model: HyperplexModel, shape: tuple[int, int], tile_size: int, overlap: int, stride: int) -> tuple:
    """Pixel and output-grid tile layouts over the image padded to the model's input multiple.

    Raises:
        InvalidParameterError: For a tile size the model cannot take or an overlap off the output grid.
    """
    multiple, fixed = model.input_multiple, model.fixed_input_size
    if fixed is not None and tile_size != fixed:
        raise InvalidParameterError(f"This model only accepts {fixed}x{fixed} images; use tile_size={fixed}.")
    if tile_size <= 0 or tile_size % multiple:
        raise InvalidParameterError(
            f"`tile_size` must be a positive multiple of {multiple} for this model; got {tile_size}."
        )
    if overlap < 0 or overlap % stride:
        raise InvalidParameterError(
            f"`overlap` must be a non-negative multiple of {stride} (the output stride); got {overlap}."
        )
    padded = [max(-(-n // multiple) * multiple, fixed or 0) for n in shape]
    tiles = [min(tile_size, n) for n in padded]
    overlaps = [min(overlap, t - stride) for t in tiles]
    pixels = Tiler(tuple(padded), tuple(tiles), tuple(overlaps))
    grid = Tiler(
        tuple(n // stride for n in padded), tuple(t // stride for t in tiles), tuple(o // stride for o in overlaps)
    )
    return pixels, grid


def _tile_function(
    model: HyperplexModel, channels: ChannelLike | None, dense: bool, transform: TileTransform | None,
    normalize: bool, device: torch.device,
) -> Callable[[np.ndarray], np.ndarray]:  # fmt: skip
    """One tile (C, h, w) -> the model's ``feature_map`` (dense=False) or ``forward`` output, as numpy."""

    def run(tile: np.ndarray) -> np.ndarray:
        tile = tile if transform is None else np.asarray(transform(tile), dtype=np.float32)
        x = torch.from_numpy(np.ascontiguousarray(tile))[None].to(device)
        x = model.normalize(x) if normalize else x
        out = model(x, channels) if dense else model.feature_map(x, channels)
        return out[0].float().cpu().numpy()

    return run


def _tiled_steps(
    model: HyperplexModel, image: Any, channels: ChannelLike | None, *, dense: bool, tile_size: int = 256,
    overlap: int = 32, channel_axis: int = 0, transform: TileTransform | None = None, normalize: bool = True,
    device: str | torch.device | None = None,
) -> Steps:  # fmt: skip
    data = as_channel_first(image, channel_axis, name="image")
    if channels is not None:
        model.check_channels(ChannelSet.coerce(channels, count=data.shape[0]))
    height, width = int(data.shape[1]), int(data.shape[2])
    stride = 1 if dense else model.feature_stride
    pixels, grid = _layouts(model, (height, width), tile_size, overlap, stride)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    fn = _tile_function(model.to(device), channels, dense, transform, normalize, device)
    was_training, stitcher = model.training, None
    model.eval()
    try:
        for done, (window, cell) in enumerate(zip(pixels, grid), start=1):
            with torch.inference_mode():
                out = fn(_read_tile(data, window, height, width))
            stitcher = stitcher or Stitcher(grid, out.shape[0])
            stitcher.add(cell, out)
            yield done, len(grid)
    finally:
        model.train(was_training)
    return stitcher.result()[:, : -(-height // stride), : -(-width // stride)]


def tiled_feature_map_steps(model: HyperplexModel, image: Any, channels: ChannelLike | None, **options: Any) -> Steps:
    """Generator form of :func:`tiled_feature_map` (same keyword options but ``progress``).

    Yields ``(done, total)`` after each tile and returns the feature map.
    """
    return _tiled_steps(model, image, channels, dense=False, **options)


def tiled_feature_map(
    model: HyperplexModel,
    image: Any,
    channels: ChannelLike | None,
    *,
    tile_size: int = 256,
    overlap: int = 32,
    channel_axis: int = 0,
    transform: TileTransform | None = None,
    normalize: bool = True,
    device: str | torch.device | None = None,
    progress: ProgressCallback | None = None,
) -> np.ndarray:
    """Dense features of a (large) image: ``model.feature_map`` tile by tile, stitched on the feature grid.

    Args:
        model: Any hyperplex model (run in eval mode; its training flag is restored).
        image: ``(C, H, W)`` image (numpy, memmap, zarr, dask or xarray; see ``channel_axis``).
        channels: The image's channels (ChannelSet, wavelengths in nm or names); None for fixed-band models.
        tile_size: Tile side in pixels; a multiple of ``model.input_multiple`` (``model.fixed_input_size``
            when the model has one).
        overlap: Pixels shared by neighbouring tiles (blended); a multiple of ``model.feature_stride``.
        channel_axis: Axis of ``image`` holding the channels.
        transform: Applied to each float32 ``(C, h, w)`` tile before the model (e.g. standardisation).
        normalize: Apply ``model.normalize`` (the input statistics the weights expect) after ``transform``.
        device: Where to run the model (default: where its parameters are).
        progress: ``progress(done, total)`` after each tile (see :func:`run_steps`).

    Returns:
        float32 ``(model.feature_dim, ceil(H / s), ceil(W / s))`` with ``s = model.feature_stride``.

    Raises:
        ChannelMismatchError: If the channels do not fit the image or the model.
        InvalidParameterError: For a tile size or overlap the model cannot use.
    """
    options = dict(tile_size=tile_size, overlap=overlap, channel_axis=channel_axis, transform=transform, device=device)
    steps = _tiled_steps(model, image, channels, dense=False, normalize=normalize, **options)
    return run_steps(steps, progress, desc="feature tiles")


def tiled_predict_steps(model: HyperplexModel, image: Any, channels: ChannelLike | None, **options: Any) -> Steps:
    """Generator form of :func:`tiled_predict` (same keyword options but ``progress``).

    Yields ``(done, total)`` after each tile and returns the prediction.
    """
    return _tiled_steps(model, image, channels, dense=True, **options)


def tiled_predict(
    model: HyperplexModel, image: Any, channels: ChannelLike | None, *, progress: ProgressCallback | None = None,
    **options: Any,
) -> np.ndarray:  # fmt: skip
    """Dense prediction of a (large) image by a model whose ``forward`` gives (B, K, H, W) maps.

    Segmentation logits (HyperSegFormer, HyperEfficientViT) or predicted channels (MIPHEI), tile by
    tile and blended. Arguments and keyword options (``tile_size``, ``overlap``, ``channel_axis``,
    ``transform``, ``normalize``, ``device``) as :func:`tiled_feature_map`; ``overlap`` may be any
    value smaller than the tile.

    Returns:
        float32 ``(K, H, W)``.

    Raises:
        ChannelMismatchError: If the channels do not fit the image or the model.
        InvalidParameterError: For a tile size the model cannot use.
    """
    return run_steps(tiled_predict_steps(model, image, channels, **options), progress, desc="prediction tiles")


def _input_scale(dtype: Any, input_scale: float | None) -> float:
    """Divisor bringing raw values to [0, 1]: given, else 255 for integer images and 1 for floats."""
    if input_scale is not None:
        if input_scale <= 0:
            raise InvalidParameterError(f"`input_scale` must be positive; got {input_scale}.")
        return float(input_scale)
    return 255.0 if np.issubdtype(np.dtype(dtype), np.integer) else 1.0


def predict_markers_steps(
    model: HyperplexModel, rgb: Any, tile_size: int = 256, overlap: int = 32, *, channel_axis: int = 0,
    input_scale: float | None = None, **options: Any,
) -> Generator[tuple[int, int], None, tuple[np.ndarray, ChannelSet]]:  # fmt: skip
    """Generator form of :func:`predict_markers` (``normalize``, ``device`` as keyword options).

    Yields ``(done, total)`` after each tile and returns ``(markers, channels)``.
    """
    data = as_channel_first(rgb, channel_axis, name="rgb")
    if data.shape[0] != model.in_chans:
        raise ChannelMismatchError(
            f"`rgb` has {data.shape[0]} channels along axis {channel_axis} but the model takes {model.in_chans}; "
            "pass an RGB image and set channel_axis (e.g. -1 for (H, W, 3) arrays)."
        )
    scale = _input_scale(data.dtype, input_scale)
    markers = yield from tiled_predict_steps(
        model, data, None, tile_size=tile_size, overlap=overlap, transform=lambda tile: tile / scale, **options
    )
    return markers, model.output_channels or ChannelSet.default(markers.shape[0])


def predict_markers(
    model: HyperplexModel,
    rgb: Any,
    tile_size: int = 256,
    overlap: int = 32,
    *,
    channel_axis: int = 0,
    input_scale: float | None = None,
    normalize: bool = True,
    device: str | torch.device | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[np.ndarray, ChannelSet]:
    """Predict mIF marker channels for a (large) H&E RGB image with a MIPHEI model.

    Args:
        model: A :class:`~hyperplex.common.models.miphei.MIPHEI` model (any fixed-channel model with
            dense output works).
        rgb: The image, ``(3, H, W)`` by default; numpy, memmap, zarr, dask or xarray.
        tile_size: Tile side in pixels; a multiple of ``model.input_multiple`` (16 for MIPHEI; the
            training size is best). Models with a fixed-size (timm) encoder need
            ``tile_size == model.fixed_input_size``.
        overlap: Pixels shared by neighbouring tiles (blended with linear ramps).
        channel_axis: Axis of ``rgb`` holding the colour channels (``-1`` for ``(H, W, 3)``).
        input_scale: Divisor bringing pixel values to [0, 1]; default 255 for integer images, 1 for floats.
        normalize: Apply ``model.normalize`` (the encoder's mean/std) after scaling.
        device: Where to run the model (default: where its parameters are).
        progress: ``progress(done, total)`` after each tile (see :func:`run_steps`).

    Returns:
        ``(markers, channels)``: a float32 ``(M, H, W)`` array of the model's output scale (tanh,
        [-1, 1]) and the ChannelSet of marker names (``model.output_channels``).

    Raises:
        ChannelMismatchError: If the image does not have the model's number of channels.
        InvalidParameterError: For a tile size the model cannot take, or a bad overlap/scale.
    """
    options = dict(channel_axis=channel_axis, input_scale=input_scale, normalize=normalize, device=device)
    return run_steps(predict_markers_steps(model, rgb, tile_size, overlap, **options), progress, desc="MIPHEI tiles")
