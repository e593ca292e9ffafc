"""Synthetic data with known truth: EMIT-like L1B radiance scenes with methane plumes."""

from hyperplex.geo.synth.emit import FILL_VALUE, EmitScene, emit_scene, pixel_area
from hyperplex.geo.synth.netcdf import write_emit_scene

__all__ = ["FILL_VALUE", "EmitScene", "emit_scene", "pixel_area", "write_emit_scene"]
