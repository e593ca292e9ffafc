"""Synthetic data with known truth: EMIT-like L1B radiance scenes with methane plumes."""

from hyperplex.geo.synth.emit import FILL_VALUE, EmitScene, emit_scene, ime_kg
from hyperplex.geo.synth.netcdf import write_emit_scene

__all__ = ["FILL_VALUE", "EmitScene", "emit_scene", "ime_kg", "write_emit_scene"]
