"""Synthetic data with known truth: EMIT-like L1B radiance scenes with methane plumes."""

from hyperplex.geo.synth.emit import FILL_VALUE, EmitScene, emit_scene, pixel_area
from hyperplex.geo.synth.netcdf import write_emit_scene
from hyperplex.geo.synth.settings import FAMILIES, SceneSettings, family_scene, family_scene_kwargs

__all__ = [
    "FAMILIES",
    "FILL_VALUE",
    "EmitScene",
    "SceneSettings",
    "emit_scene",
    "family_scene",
    "family_scene_kwargs",
    "pixel_area",
    "write_emit_scene",
]
