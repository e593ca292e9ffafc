"""Models widget logic: load a model, run it tile by tile, turn outputs into layers. Qt-free.

torch and :mod:`hyperplex.common.models` are imported inside the functions, so importing this module
(and napari start-up with the plugin installed) stays free of torch.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import numpy as np

from hyperplex.common.arrays import materialize
from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import ChannelMismatchError, InvalidParameterError
from hyperplex.plugins._embedding import feature_map_steps, pca_rgb

__all__ = [
    "EmbeddingResult",
    "PredictionResult",
    "channel_stats",
    "compute_embeddings",
    "dense_features",
    "embedding_layer",
    "feature_stride",
    "fit_channels",
    "list_presets",
    "output_channels",
    "predict_channels",
    "prediction_layers",
    "resolve_model",
]

Progress = tuple[float, str]


def list_presets(pattern: str = "*") -> list[str]:
    """Registered model presets (imports torch)."""
    from hyperplex.common.models import list_models

    return list_models(pattern)


def resolve_model(source: str) -> Any:
    """A preset name or the path of a saved model file -> the model in eval mode.

    Raises:
        InvalidParameterError: For an unknown preset.
        DataNotFoundError: For a missing file.
    """
    from hyperplex.common.models import create_model, load_model

    if source.endswith(".safetensors") or Path(source).is_file():
        return load_model(source)
    return create_model(source).eval()


def _anonymous_vocab(model: Any) -> list[str] | None:
    vocab = getattr(model, "channel_vocab", None)
    if vocab is not None and all(name == f"c{i}" for i, name in enumerate(vocab)):
        return list(vocab)
    return None


def fit_channels(model: Any, channels: ChannelSet) -> tuple[ChannelSet, str | None]:
    """The channels to pass to ``model``, and a note when they had to be mapped.

    A model whose vocabulary is anonymous (``c0, c1, ...``: an untrained preset) takes marker channels by
    position; the note says so. Any other mismatch is an error (never a silent remap).

    Raises:
        ChannelMismatchError: If the model cannot take these channels.
    """
    try:
        model.check_channels(channels)
        return channels, None
    except ChannelMismatchError:
        vocab = _anonymous_vocab(model)
        if vocab is None or len(channels) > len(vocab) or channels.is_spectral:
            raise
    mapped = ChannelSet.default(len(channels))
    note = f"model vocabulary is anonymous; channels mapped by position to {', '.join(mapped.names)}"
    return mapped, note


def dense_features(model: Any, x: Any, channels: ChannelSet) -> Any:
    """Spatial features ``(B, D, h, w)`` of any hyperplex model.

    Uses ``model.feature_map`` when the model has one; takes the finest stage of models whose
    ``forward_features`` returns a list of maps (SegFormer, EfficientViT); and for channel-adaptive
    ViTs (tokens ``(B, 1 + C * N, D)``, channel-major) averages each patch's tokens over channels.

    Args:
        model: The model (eval mode).
        x: ``(B, C, H, W)`` tensor.
        channels: One entry per channel of ``x``.

    Returns:
        A ``(B, D, h, w)`` tensor.

    Raises:
        InvalidParameterError: If the model's features have no spatial layout.
    """
    if hasattr(model, "feature_map"):
        return model.feature_map(x, channels)
    features = model.forward_features(x, channels)
    if isinstance(features, (list, tuple)):
        return features[0]
    if features.ndim == 4:  # already a (B, D, h, w) map (e.g. MIPHEI's encoder)
        return features
    patch = getattr(model, "patch_size", None)
    if patch is None or features.ndim != 3:
        raise InvalidParameterError(f"{type(model).__name__} gives no spatial features to map.")
    b, _, d = features.shape
    gh, gw = x.shape[-2] // patch, x.shape[-1] // patch
    tokens = features[:, 1:]
    if tokens.shape[1] % (gh * gw):
        raise InvalidParameterError(f"{type(model).__name__}: {tokens.shape[1]} tokens do not fit a {gh}x{gw} grid.")
    per_channel = tokens.reshape(b, -1, gh * gw, d).mean(dim=1)  # (B, N, D)
    return per_channel.transpose(1, 2).reshape(b, d, gh, gw)


def feature_stride(model: Any, channels: ChannelSet, probe: int = 64) -> int:
    """Pixels per feature cell, measured on a ``probe``-pixel zero tile."""
    import torch

    with torch.inference_mode():
        out = dense_features(model, torch.zeros(1, len(channels), probe, probe), channels)
    if out.shape[-1] == 0 or probe % out.shape[-1]:
        raise InvalidParameterError(f"Cannot infer the feature stride of {type(model).__name__}.")
    return probe // out.shape[-1]


def channel_stats(preview: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of a ``(C, h, w)`` preview (finite values only)."""
    data = materialize(preview).astype(np.float64)
    data = np.where(np.isfinite(data), data, np.nan)
    mean = np.nanmean(data, axis=(1, 2))
    std = np.nanstd(data, axis=(1, 2))
    return np.nan_to_num(mean), np.where(np.nan_to_num(std) > 0, np.nan_to_num(std), 1.0)


def _tile_function(model: Any, channels: ChannelSet, mean: np.ndarray, std: np.ndarray) -> Callable:
    import torch

    def run(tile: np.ndarray) -> np.ndarray:
        normed = (np.nan_to_num(tile) - mean[:, None, None]) / std[:, None, None]
        with torch.inference_mode():
            out = dense_features(model, torch.from_numpy(normed.astype(np.float32))[None], channels)
        return out[0].float().numpy()

    return run


class EmbeddingResult:
    """PCA colour map of a feature map.

    Args:
        rgb: ``(h, w, 3)`` float32 in ``[0, 1]``.
        explained: Explained variance ratio of the three components.
        stride: Pixels per feature cell.
        model_name: The preset or file the model came from.
        note: How channels were matched, if not by name.
    """

    def __init__(self, rgb: np.ndarray, explained: np.ndarray, stride: int, model_name: str, note: str | None):
        self.rgb, self.explained, self.stride = rgb, explained, stride
        self.model_name, self.note = model_name, note


def compute_embeddings(
    model: Any, model_name: str, image: Any, channels: ChannelSet, preview: Any, *, tile_size: int, overlap: int
) -> Generator[Progress, None, EmbeddingResult]:
    """Tiled channel-adaptive embeddings of a ``(C, H, W)`` image, reduced to a PCA colour map.

    Yields ``(fraction, stage)`` after each tile; returns the :class:`EmbeddingResult`.
    """
    used, note = fit_channels(model, channels)
    stride = feature_stride(model, used)
    mean, std = channel_stats(preview)
    tile = max(stride, tile_size // stride * stride)
    steps = feature_map_steps(
        _tile_function(model, used, mean, std), image, stride=stride, tile_size=tile,
        overlap=min(overlap // stride * stride, tile - stride),
    )  # fmt: skip
    try:
        while True:
            done, total = next(steps)
            yield 0.95 * done / total, f"tile {done}/{total}"
    except StopIteration as stop:
        features = stop.value
    rgb, explained = pca_rgb(features)
    yield 1.0, "done"
    return EmbeddingResult(rgb, explained, stride, model_name, note)


def embedding_layer(result: EmbeddingResult, *, scale: tuple[float, float] = (1.0, 1.0), units: Any = None) -> tuple:
    """Layer-data tuple for the PCA colour map, scaled so it overlays the source image."""
    sy, sx = (float(s) * result.stride for s in scale)
    kwargs: dict[str, Any] = {
        "name": f"embeddings PCA ({result.model_name})",
        "rgb": True,
        "scale": (sy, sx),
        "translate": ((result.stride - 1) / 2 * float(scale[0]), (result.stride - 1) / 2 * float(scale[1])),
        "metadata": {
            "hyperplex": {
                "model": result.model_name,
                "stride": result.stride,
                "explained_variance_ratio": [float(v) for v in result.explained],
                "channel_note": result.note,
            }
        },
    }
    if units is not None:
        kwargs["units"] = tuple(units)
    return (result.rgb, kwargs, "image")


class PredictionResult:
    """Multiplex channels predicted from an H&E image.

    Args:
        image: ``(K, H, W)`` float32 predictions.
        channels: Names (and colours) of the predicted channels.
        model_name: The preset or file the model came from.
    """

    def __init__(self, image: np.ndarray, channels: ChannelSet, model_name: str):
        self.image, self.channels, self.model_name = image, channels, model_name


_RGB = ChannelSet.from_names(("R", "G", "B"), colors=("#FF0000", "#00FF00", "#0000FF"))


def output_channels(model: Any, count: int) -> ChannelSet:
    """Names of a dense model's output channels: ``model.output_channels`` or ``config["markers"]``, else c0.."""
    for candidate in (getattr(model, "output_channels", None), getattr(model, "config", {}).get("markers")):
        if candidate is not None:
            return ChannelSet.coerce(candidate, count, name="model output channels")
    return ChannelSet.default(count)


def _as_chw_rgb(rgb: Any) -> Any:
    shape = tuple(rgb.shape)
    if len(shape) != 3 or 3 not in (shape[0], shape[-1]):
        raise InvalidParameterError(f"An H&E image must be RGB, (H, W, 3) or (3, H, W); got shape {shape}.")
    return rgb if shape[0] == 3 and shape[-1] != 3 else np.moveaxis(rgb, -1, 0)


def _run_dense(model: Any, tile: np.ndarray, multiple: int) -> np.ndarray:
    """One tile through a dense model: pad (edge) to ``model.fixed_input_size`` or a multiple, normalise, crop."""
    import torch

    _, h, w = tile.shape
    fixed = getattr(model, "fixed_input_size", None)
    ph, pw = (fixed - h, fixed - w) if fixed else ((-h) % multiple, (-w) % multiple)
    padded = np.pad(tile, ((0, 0), (0, ph), (0, pw)), mode="edge") if ph or pw else tile
    x = torch.from_numpy(np.ascontiguousarray(padded, dtype=np.float32))[None]
    with torch.inference_mode():
        if hasattr(model, "normalize"):  # the encoder's input statistics (MIPHEI)
            x = model.normalize(x)
        out = model(x, _RGB)
    return out[0, :, :h, :w].float().numpy()


def predict_channels(
    model: Any, model_name: str, rgb: Any, *, tile_size: int = 256, overlap: int = 32, multiple: int = 32
) -> Generator[Progress, None, PredictionResult]:
    """Predict multiplex channels from an RGB H&E image tile by tile (tapered stitching).

    The image is scaled to ``[0, 1]`` (uint8 / 255), normalised by ``model.normalize`` when the model
    has one (MIPHEI) and passed as channels R, G, B; tiles are padded (edge) to the model's
    ``fixed_input_size`` or to a multiple of ``multiple`` pixels and cropped back. Output names come
    from ``model.output_channels`` (MIPHEI's markers).

    Yields ``(fraction, stage)`` after each tile; returns the :class:`PredictionResult`.
    """
    from hyperplex.common.tiling import Stitcher, Tiler

    data = _as_chw_rgb(rgb)
    scale = 255.0 if np.dtype(data.dtype).kind in "ui" else 1.0
    tile_size = getattr(model, "fixed_input_size", None) or tile_size
    tiler = Tiler(data.shape, tile_size, min(overlap, tile_size - 1))
    stitcher: Stitcher | None = None
    for done, window in enumerate(tiler, start=1):
        rows, cols = window.slices
        tile = materialize(data[:, rows, cols]).astype(np.float32) / scale
        out = _run_dense(model, tile, multiple)
        stitcher = stitcher or Stitcher(tiler, out.shape[0])
        stitcher.add(window, out)
        yield 0.95 * done / len(tiler), f"tile {done}/{len(tiler)}"
    image = stitcher.result()
    yield 1.0, "done"
    return PredictionResult(image, output_channels(model, image.shape[0]), model_name)


def prediction_layers(result: PredictionResult, *, scale: Any = None, units: Any = None) -> list[tuple]:
    """One additive layer per predicted channel, named ``"<marker> (predicted)"``; a stack for the inspector."""
    from hyperplex.plugins._layers import LayerStack, image_layer_data

    stack = LayerStack(
        [result.image],
        result.channels,
        name="predicted",
        pixel_size=None if scale is None else tuple(float(s) for s in scale),
        units=None if units is None else str(units[-1]),
        extra={"model": result.model_name, "predicted": True},
    )
    layers = image_layer_data(stack)
    for _, kwargs, _ in layers:
        names = kwargs["name"]
        kwargs["name"] = [f"{n} (predicted)" for n in names] if isinstance(names, list) else f"{names} (predicted)"
    return layers
