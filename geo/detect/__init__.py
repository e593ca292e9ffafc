"""End-to-end methane plume detection on imaging-spectrometer scenes (EMIT, ENVI, GeoTIFF).

Names are imported on first access, so the CLI can read :mod:`hyperplex.geo.detect.config` (its
options' defaults) without loading the pipeline. :data:`METHODS` is the tuple of registered methods
(:func:`hyperplex.geo.methane.registry.list_methods`) at the time it is read.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "METHODS",
    "Analysis",
    "DelineationConfig",
    "DetectConfig",
    "MaskConfig",
    "SceneSource",
    "analyze",
    "detect_many",
    "detect_scene",
    "open_source",
]

_LAZY = {
    "Analysis": "scene",
    "DelineationConfig": "config",
    "DetectConfig": "config",
    "MaskConfig": "config",
    "SceneSource": "source",
    "analyze": "scene",
    "detect_many": "batch",
    "detect_scene": "scene",
    "open_source": "source",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access; ``METHODS`` reads the registry each time."""
    if name == "METHODS":
        from hyperplex.geo.methane.registry import list_methods

        return tuple(list_methods())
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
