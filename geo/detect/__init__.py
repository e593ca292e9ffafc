"""End-to-end methane plume detection on imaging-spectrometer scenes (EMIT, ENVI, GeoTIFF)."""

from hyperplex.geo.detect.batch import detect_many
from hyperplex.geo.detect.config import METHODS, DelineationConfig, DetectConfig, MaskConfig
from hyperplex.geo.detect.scene import detect_scene

__all__ = ["METHODS", "DelineationConfig", "DetectConfig", "MaskConfig", "detect_many", "detect_scene"]
