"""hyperplex.geo: hyperspectral remote sensing (EMIT and other imaging spectrometers), methane.

The main entry points are re-exported here and imported on first use, so ``import hyperplex.geo``
stays cheap: readers (:func:`open_emit`, :func:`open_cube`), the synthetic scene generator
(:func:`emit_scene`) and the detection pipeline (:func:`detect_scene`, :func:`detect_many`). The
filters live in :mod:`hyperplex.geo.methane`.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["detect_many", "detect_scene", "emit_scene", "open_cube", "open_emit", "write_emit_scene"]

_LAZY = {
    "detect_many": "hyperplex.geo.detect",
    "detect_scene": "hyperplex.geo.detect",
    "emit_scene": "hyperplex.geo.synth",
    "open_cube": "hyperplex.geo.io",
    "open_emit": "hyperplex.geo.io",
    "write_emit_scene": "hyperplex.geo.synth",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access."""
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hyperplex.geo' has no attribute {name!r}")
