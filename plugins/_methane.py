"""Methane widget logic: run a detector by name, delineate plumes, build result layers. Qt-free.

Both entry points run the command line's pipeline (:func:`hyperplex.geo.detect.analyze`): on a file,
:func:`analyze_file` reads it exactly as ``hyperplex methane detect`` does (only the bands it needs, block
by block); on a layer's array, :func:`analyze_cube` reads the array (lazy ones too) in row blocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hyperplex.common.channels import ChannelSet

__all__ = [
    "MethaneResult",
    "analyze_cube",
    "analyze_file",
    "method_choices",
    "methane_layers",
    "plume_table",
]


def method_choices() -> list[str]:
    """The widget's methods: those of :mod:`hyperplex.geo.methane.registry`, the pipeline's default first."""
    from hyperplex.geo.detect.config import DetectConfig
    from hyperplex.geo.methane.registry import list_methods

    return sorted(list_methods(), key=lambda name: name != DetectConfig.method)


@dataclass
class MethaneResult:
    """Output of one detector run.

    Args:
        enhancement: ``(H, W)`` float32 CH4 enhancement (ppm·m) or detection score.
        labels: ``(H, W)`` int32 plume ids, 0 = background.
        table: Column name -> one value per plume (``label`` first).
        method: The method key (``"mag1c"``, ...).
        units: ``"ppm·m"`` or ``"score"``.
        window: Fitting window in nm.
    """

    enhancement: np.ndarray
    labels: np.ndarray
    table: dict[str, np.ndarray]
    method: str
    units: str
    window: tuple[float, float]


def analyze_cube(
    method: str,
    cube: Any,
    wavelengths: Sequence[float],
    fwhm: Sequence[float] | None,
    *,
    window: tuple[float, float] = (2122.0, 2488.0),
    pixel_size_m: float | None = None,
) -> MethaneResult:
    """Run the scene pipeline of ``hyperplex methane detect`` on an in-memory ``(bands, H, W)`` cube.

    Masks (fill, saturation, flares, dark water), the filter, plume delineation, look-alike vetting
    and the unbiased IME are exactly those of :func:`hyperplex.geo.detect.analyze`.

    Args:
        method: A registered method (:func:`method_choices`).
        cube: Radiance, channel-first.
        wavelengths: Band centres in nm.
        fwhm: Band widths in nm (None: the band spacing).
        window: Fitting window in nm.
        pixel_size_m: Ground pixel size, for plume areas and masses.

    Returns:
        The result with its plume table.

    Raises:
        InvalidParameterError: For an unknown method or an empty window.
    """
    from hyperplex.geo.detect import DetectConfig, SceneSource

    config = DetectConfig(method=method, window=tuple(window))  # checks the method and the window
    channels = ChannelSet.from_wavelengths(wavelengths, fwhm)
    return _analyze(SceneSource.from_array(cube, channels, pixel_size_m=pixel_size_m, name="napari layer"), config)


def analyze_file(method: str, path: Any, *, window: tuple[float, float] = (2122.0, 2488.0)) -> MethaneResult:
    """Run ``hyperplex methane detect``'s pipeline on a radiance file (EMIT, ENVI, GeoTIFF) in its own geometry.

    The file is read as the command line reads it: the filter, mask and quicklook bands only, in blocks
    of lines, so memory stays near the CLI's whatever the layer shows.

    Args:
        method: A registered method (:func:`method_choices`).
        path: The radiance file the layer was opened from.
        window: Fitting window in nm.

    Returns:
        The result with its plume table, on the file's grid (sensor geometry for EMIT).

    Raises:
        InvalidParameterError: For an unknown method or an empty window.
        FileFormatError: If the file is not a radiance file the pipeline reads.
    """
    from hyperplex.geo.detect import DetectConfig, open_source

    config = DetectConfig(method=method, window=tuple(window))
    return _analyze(open_source(path), config)


def _analyze(source: Any, config: Any) -> MethaneResult:
    from hyperplex.geo.detect import analyze

    result = analyze(source, config)
    labels = result.labels.astype(np.int32)
    table = plume_table(result.plumes, labels)
    return MethaneResult(result.enhancement, labels, table, config.method, config.units, tuple(config.window))


def plume_table(plumes: list[dict[str, Any]], labels: np.ndarray) -> dict[str, np.ndarray]:
    """Columns ``label, pixels, peak, mean, row, col, ime_kg, confidence`` from the pipeline's plume attributes."""
    from scipy import ndimage

    from hyperplex.geo.detect.plume_table import peak_and_mean

    ids = np.array([p["id"] for p in plumes], dtype=np.int32)
    centroids = np.asarray(ndimage.center_of_mass(np.ones(labels.shape), labels, ids)).reshape(-1, 2)
    values = np.array([peak_and_mean(p) for p in plumes], dtype=float).reshape(-1, 2)
    return {
        "label": ids,
        "pixels": np.array([p["pixels"] for p in plumes], dtype=np.int64),
        "peak": values[:, 0],
        "mean": values[:, 1],
        "row": centroids[:, 0],
        "col": centroids[:, 1],
        "ime_kg": np.array([np.nan if p.get("ime_kg") is None else p["ime_kg"] for p in plumes], dtype=float),
        "confidence": np.array([p["confidence"] for p in plumes], dtype=object),
    }


def methane_layers(
    result: MethaneResult, *, scale: tuple[float, float] | None = None, units: tuple[str, str] | None = None
) -> list[tuple]:
    """Layer-data tuples for a result: the enhancement image and the plume labels (with the table as features).

    Args:
        result: The detector output.
        scale: ``(dy, dx)`` of the cube's layer, so the results overlay it.
        units: Spatial units of the cube's layer (e.g. ``("meter", "meter")``).

    Returns:
        ``[(enhancement, kwargs, "image"), (labels, kwargs, "labels")]``.
    """
    finite = result.enhancement[np.isfinite(result.enhancement)]
    high = float(np.percentile(finite, 99.5)) if finite.size else 1.0
    meta = {"hyperplex": {"method": result.method, "units": result.units, "window": list(result.window)}}
    spatial = {} if scale is None else {"scale": tuple(scale)}
    spatial |= {} if units is None else {"units": tuple(units)}
    image = (
        result.enhancement,
        {
            "name": f"CH4 {result.method} ({result.units})",
            "colormap": "magma",
            "contrast_limits": (0.0, max(high, 1e-6)),
            "metadata": meta,
            **spatial,
        },
        "image",
    )
    labels = (
        result.labels,
        {
            "name": f"CH4 plumes ({result.method})",
            "features": {k: list(v) for k, v in result.table.items()} | {"index": list(result.table["label"])},
            "metadata": meta,
            "opacity": 0.5,
            **spatial,
        },
        "labels",
    )
    return [image, labels]
