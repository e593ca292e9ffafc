"""Methane widget logic: run a detector by name, delineate plumes, build result layers. Qt-free.

The plume step is :func:`delineate_plumes`, a thin wrapper over ``hyperplex.geo.detect``'s delineation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hyperplex.common.errors import InvalidParameterError, NoValidDataError

__all__ = [
    "METHODS",
    "MethaneResult",
    "delineate_plumes",
    "methane_layers",
    "plume_table",
    "run_detector",
]

#: Widget choice -> function name in ``hyperplex.geo.methane`` and output unit.
METHODS: dict[str, tuple[str, str]] = {
    "mag1c": ("mag1c", "ppm·m"),
    "mag1c-sas": ("mag1c_sas", "ppm·m"),
    "mf": ("matched_filter", "ppm·m"),
    "cem": ("cem", "score"),
    "ace": ("ace", "score"),
}


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


def _detector(method: str) -> tuple[Any, str]:
    if method not in METHODS:
        raise InvalidParameterError(f"Unknown methane method {method!r}; choose one of {', '.join(METHODS)}.")
    name, units = METHODS[method]
    return _find_function(name), units


def _find_function(name: str) -> Any:
    """``hyperplex.geo.methane.<name>``, looked up in the package, then in its modules."""
    import importlib
    import pkgutil

    import hyperplex.geo.methane as methane

    if callable(getattr(methane, name, None)):  # not the submodule of the same name
        return getattr(methane, name)
    for info in pkgutil.iter_modules(methane.__path__):
        module = importlib.import_module(f"{methane.__name__}.{info.name}")
        if callable(getattr(module, name, None)):
            return getattr(module, name)
    raise InvalidParameterError(f"hyperplex.geo.methane has no `{name}` in this installation; pick another method.")


def run_detector(
    method: str,
    cube: Any,
    wavelengths: Sequence[float],
    fwhm: Sequence[float],
    *,
    window: tuple[float, float] = (2122.0, 2488.0),
    mask: np.ndarray | None = None,
) -> tuple[np.ndarray, str]:
    """Run one of :data:`METHODS` on a ``(bands, H, W)`` cube.

    Args:
        method: Key of :data:`METHODS`.
        cube: Radiance, channel-first.
        wavelengths: Band centres in nm.
        fwhm: Band widths in nm.
        window: Fitting window in nm.
        mask: ``(H, W)`` bool, True for pixels to exclude.

    Returns:
        ``(enhancement (H, W) float32, units)``.

    Raises:
        InvalidParameterError: For an unknown method or an empty window.
    """
    if window[1] <= window[0]:
        raise InvalidParameterError(f"Window must be (low, high) nm with low < high; got {window}.")
    fn, units = _detector(method)
    result = fn(cube, np.asarray(wavelengths), np.asarray(fwhm), channel_axis=0, mask=mask, window=tuple(window))
    return np.asarray(getattr(result, "values", result), dtype=np.float32), units


def delineate_plumes(
    enhancement: np.ndarray, *, units: str = "ppm·m", config: Any = None, valid: np.ndarray | None = None
) -> np.ndarray:
    """Plume labels from an enhancement map, by ``hyperplex.geo``'s delineation (the swap point of the widget).

    Smoothing, a threshold at the larger of an absolute level and k robust standard deviations,
    hysteresis growth, and minimum size and peak (see :func:`hyperplex.geo.detect.delineate.delineate`).
    Unitless scores (CEM, ACE) use the statistical threshold only.

    Args:
        enhancement: ``(H, W)`` enhancement or score; NaN is invalid.
        units: ``"ppm·m"`` or ``"score"``.
        config: A :class:`hyperplex.geo.detect.DelineationConfig`; the defaults when None.
        valid: Pixels to consider (default: the finite ones).

    Returns:
        ``(H, W)`` int32 labels, plumes numbered 1..N.

    Raises:
        NoValidDataError: If no pixel is finite.
    """
    from hyperplex.geo.detect import DelineationConfig
    from hyperplex.geo.detect.delineate import delineate

    values = np.asarray(enhancement, dtype=np.float32)
    finite = np.isfinite(values)
    if not finite.any():
        raise NoValidDataError("The enhancement map has no finite pixels; nothing to delineate.")
    mask = finite if valid is None else finite & valid
    found = delineate(values, mask, config or DelineationConfig(), absolute=units == "ppm·m")
    return found.labels.astype(np.int32)


def plume_table(
    enhancement: np.ndarray, labels: np.ndarray, *, pixel_size_m: float | None = None, units: str = "ppm·m"
) -> dict[str, np.ndarray]:
    """Per-plume statistics: pixels, peak, mean, centroid and, for ppm·m with a pixel size, IME (kg).

    The IME here is the enhancement summed over the plume mask only, a quick lower bound; the
    scene pipeline (``hyperplex geo detect``) grows the region and debiases the enhancement first.

    Args:
        enhancement: ``(H, W)`` enhancement.
        labels: ``(H, W)`` plume ids (0 = background).
        pixel_size_m: Ground pixel size for area and integrated mass enhancement.
        units: Unit of ``enhancement``; IME is computed for ``"ppm·m"`` only.

    Returns:
        Columns ``label, pixels, peak, mean, row, col`` (+ ``area_m2, ime_kg``), one entry per plume.
    """
    from scipy import ndimage

    ids = np.unique(labels[labels > 0])
    values = np.nan_to_num(np.asarray(enhancement, dtype=np.float64))
    table: dict[str, np.ndarray] = {"label": ids.astype(np.int32)}
    table["pixels"] = ndimage.sum_labels(np.ones_like(values), labels, ids).astype(np.int64)
    table["peak"] = np.asarray(ndimage.maximum(values, labels, ids), dtype=np.float64)
    table["mean"] = np.asarray(ndimage.mean(values, labels, ids), dtype=np.float64)
    centroids = np.asarray(ndimage.center_of_mass(np.ones_like(values), labels, ids)).reshape(-1, 2)
    table["row"], table["col"] = centroids[:, 0], centroids[:, 1]
    if pixel_size_m is not None and units == "ppm·m":
        from hyperplex.geo.geodesy import ime_kg

        area = float(pixel_size_m) ** 2
        sums = np.asarray(ndimage.sum_labels(values, labels, ids), dtype=np.float64)
        table["area_m2"] = table["pixels"] * area
        table["ime_kg"] = np.array([ime_kg(s, area) for s in sums])
    return table


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
