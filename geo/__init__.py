"""hyperplex.geo: hyperspectral remote sensing (EMIT and other imaging spectrometers), methane.

The main entry points are re-exported here and imported on first use, so ``import hyperplex.geo``
stays cheap: readers (:func:`open_emit`, :func:`open_cube`), the synthetic scene generator
(:func:`emit_scene`) and the detection pipeline (:func:`detect_scene`, :func:`detect_many`). The
filters live in :mod:`hyperplex.geo.methane`.
"""

from hyperplex.common.lazy import lazy_exports

__all__ = ["detect_many", "detect_scene", "emit_scene", "open_cube", "open_emit", "write_emit_scene"]

__getattr__ = lazy_exports(
    __name__,
    {
        "detect_many": "hyperplex.geo.detect",
        "detect_scene": "hyperplex.geo.detect",
        "emit_scene": "hyperplex.geo.synth",
        "open_cube": "hyperplex.geo.io",
        "open_emit": "hyperplex.geo.io",
        "write_emit_scene": "hyperplex.geo.synth",
    },
)
