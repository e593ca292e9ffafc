"""Models widget logic: load a model, run the library's tiled inference, turn outputs into layers. Qt-free.

The tiling, padding and stitching live in :mod:`hyperplex.common.models.inference`; this module only
adapts channels and inputs, reports the library's per-tile progress as ``(fraction, stage)`` for the
worker, and builds layer data. torch and :mod:`hyperplex.common.models` are imported inside the
functions, so importing this module (and napari start-up with the plugin installed) stays free of torch.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np

from hyperplex.common.arrays import materialize
from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import ChannelMismatchError, InvalidParameterError
from hyperplex.plugins._embedding import pca_rgb

__all__ = [
    "PCA_NOTE",
    "EmbeddingResult",
    "channel_groups",
    "channel_slots",
    "channel_stats",
    "compute_embeddings",
    "embedding_layer",
    "fit_channels",
    "input_kind",
    "is_model_file",
    "model_note",
    "preset_weights",
    "presets_for",
    "resolve_model",
    "trained_tile_size",
]

Progress = tuple[float, str]


#: What the colours of the embeddings layer mean.
PCA_NOTE = (
    "Colours: the first three principal components of the model's features as red, green and blue; "
    "pixels of similar colour have similar features (with a pretrained model: cells with similar marker "
    "profiles, i.e. of similar type, get similar colours). The hues themselves carry no meaning."
)
_UNTRAINED = {
    "he": "UNTRAINED (random weights): the predicted markers carry no meaning until the model is trained",
    None: "UNTRAINED (random weights): the colours show structure of the input, not learned meaning",
}


def input_kind(channels: ChannelSet | None) -> str:
    """The preset input kind of an image: ``"he"`` for an RGB layer (``None``), else by its channels.

    Wavelengths mean ``"hyperspectral"``; marker names (or anonymous channels) mean ``"microscopy"``.
    """
    if channels is None:
        return "he"
    return "hyperspectral" if channels.is_spectral else "microscopy"


def presets_for(kind: str) -> list[str]:
    """Presets suited to an input kind: pretrained ones first (the default), then untrained, tiny ``*_test`` last."""
    from hyperplex.common.models import list_models

    names, pretrained = list_models(input=kind), set(list_models(input=kind, pretrained=True))
    rank = {n: (n.endswith("_test"), n not in pretrained) for n in names}
    return sorted(names, key=lambda n: rank[n])  # stable: alphabetical within each group


def is_model_file(source: str) -> bool:
    """True when ``source`` names a saved model file rather than a preset."""
    return source.endswith(".safetensors") or Path(source).is_file()


def resolve_model(source: str, channels: ChannelSet | None = None) -> Any:
    """A preset name or the path of a saved model file -> the model in eval mode.

    A pretrained preset loads its shipped weights (its architecture is the saved one; more markers than
    its channel slots are embedded in groups, see :func:`channel_groups`). An untrained preset is sized
    to ``channels`` when given (``create_model(source, channels=channels)``: ChAda-ViT gets one slot per
    channel, ChannelViT a vocabulary of the marker names); a saved model is used as saved.

    Raises:
        InvalidParameterError: For an unknown preset.
        DataNotFoundError: For a missing file.
        ChannelMismatchError: If a preset cannot take ``channels``.
    """
    from hyperplex.common.models import create_model, load_model, preset_info

    if is_model_file(source):
        return load_model(source)
    if preset_info(source).pretrained:
        return create_model(source, pretrained=True)
    return create_model(source, channels=channels).eval()


def model_note(source: str, channels: ChannelSet | None) -> str:
    """What the user should know about a model before running it: untrained weights, channel sizing.

    Args:
        source: A preset name or a saved model file.
        channels: The image's channels (None for an RGB H&E image).
    """
    from hyperplex.common.models import preset_info

    if is_model_file(source):
        return f"saved model {Path(source).name}: runs with the weights in the file"
    try:
        info = preset_info(source)
    except InvalidParameterError as err:
        return str(err)
    if info.pretrained:
        return _pretrained_note(source, channels)
    notes = [_UNTRAINED.get(info.input, _UNTRAINED[None])]
    sizing = None if channels is None else info.channel_note(channels)
    return "; ".join(notes + ([sizing] if sizing else []))


def _pretrained_note(source: str, channels: ChannelSet | None) -> str:
    """Note of a pretrained preset: where its weights come from, its tile size, channel grouping."""
    model = resolve_model(source)
    notes = [f"pretrained weights ({Path(str(preset_weights(source))).stem}.md is the model card)"]
    size = trained_tile_size(model)
    if size:
        notes.append(f"trained on {size} px tiles")
    slots = channel_slots(model)
    if channels is not None and slots is not None and len(channels) > slots:
        notes.append(f"{len(channels)} markers are more than its {slots} channel slots: embedded in groups, averaged")
    return "; ".join(notes)


def preset_weights(source: str) -> Path | None:
    """The shipped weights file of a preset (None for a file, an unknown or an untrained preset)."""
    from hyperplex.common.models import preset_info

    try:
        return None if is_model_file(source) else preset_info(source).weights_path
    except InvalidParameterError:
        return None


def trained_tile_size(model: Any) -> int | None:
    """The square input size a model was built for (``img_size`` in its config), or None."""
    size = getattr(model, "config", {}).get("img_size")
    return int(size) if isinstance(size, int) else None


def channel_slots(model: Any) -> int | None:
    """How many channels a slot-indexed model (ChAda-ViT without a vocabulary) takes at once, else None."""
    if getattr(model, "channel_vocab", None) is not None:
        return None
    slots = getattr(model, "max_channels", None)
    return int(slots) if isinstance(slots, int) else None


def channel_groups(model: Any, count: int) -> list[np.ndarray]:
    """Channel indices in groups the model can take: one group, or near-equal groups of <= its slots.

    A ChAda-ViT's feature map is the mean of its per-channel tokens; with more markers than slots the
    markers are split into ``ceil(count / slots)`` groups, each embedded on its own, and the group maps
    averaged weighted by group size (attention then only mixes markers within a group).
    """
    slots = channel_slots(model)
    if slots is None or count <= slots:
        return [np.arange(count)]
    return np.array_split(np.arange(count), -(-count // slots))


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


def _fractions(
    steps: Generator[tuple[int, int], None, Any], share: float = 0.95, start: float = 0.0, stage: str = ""
) -> Generator[Progress, None, Any]:
    """Turn a library ``*_steps`` generator's ``(done, total)`` into ``(fraction, "tile i/n")``; return its result.

    The fractions run from ``start`` to ``start + share``; ``stage`` prefixes the label (e.g. a channel group).
    """
    try:
        while True:
            done, total = next(steps)
            yield start + share * done / total, f"{stage}tile {done}/{total}"
    except StopIteration as stop:
        return stop.value


def channel_stats(preview: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of a ``(C, h, w)`` preview (finite values only)."""
    data = materialize(preview).astype(np.float64)
    data = np.where(np.isfinite(data), data, np.nan)
    mean = np.nanmean(data, axis=(1, 2))
    std = np.nanstd(data, axis=(1, 2))
    return np.nan_to_num(mean), np.where(np.nan_to_num(std) > 0, np.nan_to_num(std), 1.0)


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
    from hyperplex.common.models.inference import tiled_feature_map_steps

    mean, std = channel_stats(preview)
    multiple, stride = model.input_multiple, model.feature_stride
    tile = model.fixed_input_size or max(multiple, tile_size // multiple * multiple)
    options = dict(tile_size=tile, overlap=min(overlap // stride * stride, tile - stride))
    groups = channel_groups(model, len(channels))
    features, notes = 0.0, []
    for i, index in enumerate(groups):
        used, note = fit_channels(model, channels if len(groups) == 1 else channels[index])
        notes += [note] if note and note not in notes else []
        m, s = mean[index, None, None], std[index, None, None]
        steps = tiled_feature_map_steps(
            model, image if len(groups) == 1 else _channel_subset(image, index), used,
            transform=lambda t, m=m, s=s: (np.nan_to_num(t) - m) / s, **options,
        )  # fmt: skip
        stage = f"group {i + 1}/{len(groups)}: " if len(groups) > 1 else ""
        part = yield from _fractions(steps, 0.95 / len(groups), 0.95 * i / len(groups), stage)
        features = features + part * (len(index) / len(channels))
    if len(groups) > 1:
        notes.append(f"{len(channels)} markers embedded in {len(groups)} groups of <= {channel_slots(model)}, averaged")
    rgb, explained = pca_rgb(features)
    yield 1.0, "done"
    return EmbeddingResult(rgb, explained, stride, model_name, "; ".join(notes) or None)


def _channel_subset(image: Any, index: np.ndarray) -> Any:
    """Lazy ``image[index]`` along the channel axis (any array type the tiled inference reads)."""
    import dask.array as da

    if isinstance(image, (np.ndarray, da.Array)) or hasattr(image, "dims"):  # numpy, dask, xarray index natively
        return image[index]
    return da.asarray(image)[index]  # zarr and other array-likes: read lazily


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
