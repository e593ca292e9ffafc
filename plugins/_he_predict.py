"""H&E -> multiplex in napari: the whole-slide pipeline of ``hyperplex bio predict-mif`` on an RGB layer. Qt-free.

:func:`predict_layer` runs :func:`hyperplex.bio.predict_mif.predict_mif_steps` on the layer's full
resolution (tile by tile, reporting ``(fraction, stage)`` so a worker can show progress and cancel
between tiles) into a folder under the system's temporary directory; running it again on the same
layer with the same settings resumes a cancelled run. :func:`slide_layers` turns the result into one
named, coloured layer per predicted marker and a Points layer of the cells whose features are the
per-cell table.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np

from hyperplex.plugins._models import _fractions

__all__ = ["SlidePrediction", "predict_layer", "slide_layers"]

Progress = tuple[float, str]
_MICRONS = ("micrometer", "micron", "µm", "um")


class SlidePrediction:
    """A finished prediction and where its layers go.

    Args:
        result: What :func:`~hyperplex.bio.predict_mif.predict_mif_steps` wrote.
        model_name: The preset or file the model came from.
        scale: ``(y, x)`` world units per pixel of the source layer.
        units: The source layer's spatial units (or None).
    """

    def __init__(self, result: Any, model_name: str, scale: tuple[float, float], units: Any):
        self.result, self.model_name, self.scale, self.units = result, model_name, scale, units


def _work_path(name: str, shape: tuple[int, ...]) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or "slide"
    return Path(tempfile.gettempdir()) / "hyperplex-mif" / f"{slug}-{shape[0]}x{shape[1]}.ome.zarr"


def _rgb_view(layer: Any) -> Any:
    """The layer's full-resolution ``(Y, X, 3)`` data as a lazy ``(3, Y, X)`` array."""
    import dask.array as da

    data = layer.data[0] if layer.multiscale else layer.data
    return da.asarray(data).transpose(2, 0, 1)


def predict_layer(
    layer: Any, model: str, *, tile: int | None = None, overlap: int | None = None, out: Path | None = None
) -> Generator[Progress, None, SlidePrediction]:
    """Predict the markers and cells of an RGB H&E layer with the whole-slide pipeline.

    Args:
        layer: A napari RGB image layer (or any object with ``data``, ``multiscale``, ``scale``, ``units``, ``name``).
        model: A preset with trained weights or a saved model file.
        tile: Tile side (None: the model's training size).
        overlap: Tile overlap (None: a quarter of the tile).
        out: Output OME-Zarr (default: under the temporary directory, named after the layer).

    Yields ``(fraction, stage)``; returns the :class:`SlidePrediction`.
    """
    from hyperplex.bio.predict_mif import predict_mif_steps

    rgb = _rgb_view(layer)
    scale = tuple(float(s) for s in layer.scale[-2:])
    units = [str(u) for u in getattr(layer, "units", ())[-2:]] or None
    pixel_um = scale[0] if units and units[0] in _MICRONS else None
    out = out or _work_path(str(layer.name), rgb.shape[1:])
    out.parent.mkdir(parents=True, exist_ok=True)
    steps = predict_mif_steps(rgb, out, model=model, tile=tile, overlap=overlap, pixel_size_um=pixel_um)
    result = yield from _fractions(steps)
    yield 1.0, "done"
    return SlidePrediction(result, model, scale, units)


def _marker_layers(prediction: SlidePrediction) -> list[tuple]:
    from hyperplex.bio.open import open_image
    from hyperplex.plugins._layers import image_layer_data

    stack = open_image(prediction.result.zarr)
    stack.metadata.update(model=prediction.model_name, predicted=True, intensity="0-255 = 0-1 of the training scale")
    layers = image_layer_data(stack)
    for _, kwargs, _ in layers:
        kwargs["name"] = [f"{n} (predicted)" for n in kwargs["name"]]
        kwargs["scale"] = prediction.scale
        if prediction.units:
            kwargs["units"] = tuple(prediction.units)
    return layers


def _cell_layer(prediction: SlidePrediction) -> tuple:
    import pandas as pd

    result = prediction.result
    table = pd.read_csv(result.cells_csv)
    coords = table[["centroid_y", "centroid_x"]].to_numpy(np.float64)
    kwargs: dict[str, Any] = {
        "name": "cells (predicted)",
        "features": table,
        "scale": prediction.scale,
        "size": 6.0,
        "face_color": "transparent",
        "border_color": "yellow",
        "metadata": {
            "hyperplex": {"table": str(prediction.result.cells_csv), "thresholds": prediction.result.thresholds}
        },
    }
    if prediction.units:
        kwargs["units"] = tuple(prediction.units)
    return (coords, kwargs, "points")


def slide_layers(prediction: SlidePrediction) -> list[tuple]:
    """Layer-data tuples: one additive layer per marker (``"<marker> (predicted)"``), then the cells as points."""
    return [*_marker_layers(prediction), _cell_layer(prediction)]
