"""End-to-end methane plume detection on imaging-spectrometer scenes (EMIT, ENVI, GeoTIFF)."""

from hyperplex.geo.detect.batch import detect_many
from hyperplex.geo.detect.config import METHODS, DelineationConfig, DetectConfig, MaskConfig
from hyperplex.geo.detect.scene import Analysis, analyze, detect_scene
from hyperplex.geo.detect.source import SceneSource, open_source

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
