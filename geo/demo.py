"""The built-in demo: a small synthetic EMIT scene through the most complete pipeline we have."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hyperplex.common.channels import ChannelSet
from hyperplex.geo.io.emit import open_emit
from hyperplex.geo.quicklook import true_color, write_quicklook
from hyperplex.geo.synth import emit_scene, write_emit_scene

__all__ = ["DEMO_SCENE", "run_demo"]

#: Arguments of the demo scene: small enough for seconds on 2 cores, with every hazard present.
DEMO_SCENE: dict[str, Any] = {
    "lines": 256, "samples": 192, "plumes": 3, "plume_strength": (1200.0, 3000.0), "plume_size": (2.5, 4.0),
    "seed": 7, "water": 1, "lookalikes": 2, "saturated": 1, "flares": 1, "fill_columns": 1, "glt_rotation": 25.0,
}  # fmt: skip


def run_demo(out_dir: str | Path) -> dict[str, Any]:
    """Write the demo scene into ``out_dir`` and process it.

    Returns:
        Paths of everything written, keyed by product.
    """
    out = Path(out_dir)
    scene_paths = write_emit_scene(emit_scene(**DEMO_SCENE), out / "scene")
    ds = open_emit(scene_paths["radiance"], ortho=True)
    channels = ChannelSet.from_xarray(ds["radiance"])
    rgb = true_color(ds["radiance"].values, channels)
    quicklook = write_quicklook(out / f"{scene_paths['radiance'].stem}_quicklook.png", rgb, title="EMIT (synthetic)")
    return {**scene_paths, "quicklook": quicklook}
