"""Learned plume segmentation as a detection method: a plume probability map from HyperSegFormer or HyperEfficientViT.

The method has the filters' contract (``f(cube, wavelengths, fwhm, *, mask=None, window=None, ...)``) and
is registered as ``hypersegformer`` and ``hyperefficientvit`` (units: score). It computes
:func:`~hyperplex.geo.methane.plume_features.plume_features` of the 2122-2488 nm bands on the whole scene
(the input the models were trained on, :mod:`hyperplex.geo.methane.plume_tiles`), runs the model tile by
tile (:func:`hyperplex.common.models.inference.tiled_predict`, on the GPU when there is one) and returns
the probability of class ``plume`` per pixel, NaN where masked. The detection pipeline then delineates
plumes on that map and computes IME and its uncertainty from its own matched-filter ppm·m estimate under
each plume (:mod:`hyperplex.geo.detect.plume_table`).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from hyperplex.common.arrays import index_slice
from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import ChannelMismatchError
from hyperplex.geo.methane.plume_features import PLUME_WINDOW_NM, feature_channels, plume_features, window_bands

__all__ = ["learned_segmentation", "load_segmenter"]

_BAND_TOLERANCE_NM = 3.0  # largest shift between the data's and the model's band centres


@functools.lru_cache(maxsize=4)
def load_segmenter(model: str, weights: str | None = None, device: str = "auto") -> Any:
    """The segmentation model: ``create_model(model, pretrained=True)`` or the saved file ``weights``, in eval mode.

    Args:
        model: A preset with shipped weights (``hypersegformer_plume``, ``hyperefficientvit_plume``).
        weights: A model file written by ``hyperplex train`` (``<run>/model.safetensors``) instead.
        device: ``auto`` (the GPU when there is one), ``cpu`` or ``cuda[:N]``.
    """
    import torch

    from hyperplex.common.models import create_model, load_model

    net = load_model(weights) if weights else create_model(model, pretrained=True)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return net.to(device).eval()


def _model_channels(net: Any, wavelengths: np.ndarray) -> ChannelSet:
    """The model's trained channels when the data's window bands match them (within 3 nm); raises otherwise."""
    expected = feature_channels(wavelengths)
    trained = net.trained_channels
    if trained is None:
        return expected
    bands = [float(name.split()[1]) for name in trained.names[:-1] if name.startswith("logL ")]
    if len(bands) != wavelengths.size or np.abs(np.asarray(bands) - wavelengths).max() > _BAND_TOLERANCE_NM:
        span = f"{min(bands):.1f}-{max(bands):.1f} nm" if bands else "no bands"
        raise ChannelMismatchError(
            f"The model was trained on {len(bands)} bands in {PLUME_WINDOW_NM} nm ({span}); the data has "
            f"{wavelengths.size} bands there. Use EMIT-like data or train a model on your sensor's bands."
        )
    return trained


def learned_segmentation(
    cube: Any,
    wavelengths: Any,
    fwhm: Any,
    *,
    mask: np.ndarray | None = None,
    window: tuple[float, float] | None = None,
    model: str = "hypersegformer_plume",
    weights: str | None = None,
    device: str = "auto",
    tile_size: int = 640,
    overlap: int = 32,
) -> np.ndarray:
    """Plume probability (0-1) per pixel from a learned segmentation model.

    Args:
        cube: (C, H, W) radiance (numpy; or an xarray DataArray with a band dimension first).
        wavelengths: Band centres in nm.
        fwhm: Band widths in nm.
        mask: (H, W) True where pixels are excluded (NaN in the output, left out of the features' statistics).
        window: Wavelength window; None uses the bands given that lie in 2122-2488 nm.
        model: Preset with shipped weights.
        weights: A trained model file to use instead of the preset's weights.
        device: ``auto``, ``cpu`` or ``cuda[:N]``.
        tile_size: Inference tile side (a multiple of the model's input multiple, 32).
        overlap: Pixels shared by neighbouring tiles.

    Returns:
        (H, W) float32 probability of ``plume``, NaN where masked or invalid.

    Raises:
        ChannelMismatchError: If the data's window bands are not the model's.
    """
    data = np.asarray(cube, dtype=np.float32)
    wl = np.asarray(wavelengths, dtype=np.float64)
    bands = window_bands(wl, window or PLUME_WINDOW_NM)
    net = load_segmenter(model, weights, device)
    channels = _model_channels(net, wl[bands])
    valid = None if mask is None else ~np.asarray(mask, dtype=bool)
    window_cube = data[index_slice(bands)]  # a view when the window's bands are consecutive (they are in EMIT)
    features = plume_features(window_cube, wl[bands], np.asarray(fwhm, dtype=np.float64)[bands], valid)
    logits = _predict(net, features, channels, tile_size, overlap)
    del features
    prob = _plume_probability(logits)
    invalid = ~np.all(np.isfinite(window_cube) & (window_cube > 0), axis=0)
    prob[invalid if valid is None else invalid | ~valid] = np.nan
    return prob


def _predict(net: Any, features: np.ndarray, channels: ChannelSet, tile_size: int, overlap: int) -> np.ndarray:
    """Tiled logits (K, H, W) with all the CPU threads torch is allowed."""
    from hyperplex.common.models.inference import tiled_predict

    h, w = features.shape[1:]
    multiple = net.input_multiple
    size = min(tile_size, -(-max(h, w) // multiple) * multiple)
    return tiled_predict(net, features, channels, tile_size=size, overlap=min(overlap, size // 2), normalize=False)


def _plume_probability(logits: np.ndarray) -> np.ndarray:
    """Probability of the last class: softmax over K >= 2 logits, the sigmoid of a single logit."""
    if logits.shape[0] == 1:
        return (1.0 / (1.0 + np.exp(-logits[0]))).astype(np.float32)
    shifted = logits - logits.max(axis=0, keepdims=True)
    e = np.exp(shifted)
    return (e[-1] / e.sum(axis=0)).astype(np.float32)
