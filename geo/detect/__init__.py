"""End-to-end methane plume detection on imaging-spectrometer scenes (EMIT, ENVI, GeoTIFF).

Names are imported on first access, so the CLI can read :mod:`hyperplex.geo.detect.config` (its
options' defaults) without loading the pipeline. :data:`METHODS` is the tuple of registered methods
(:func:`hyperplex.geo.methane.registry.list_methods`) at the time it is read.
"""

from __future__ import annotations

from typing import Any

from hyperplex.common.lazy import lazy_exports

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


_exports = lazy_exports(__name__, {name: f"{__name__}.{module}" for name, module in _LAZY.items()})


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access; ``METHODS`` reads the registry each time."""
    if name == "METHODS":
        from hyperplex.geo.methane.registry import list_methods

        return tuple(list_methods())
    return _exports(name)
