"""Methane detection in napari on the synthetic EMIT scene; saves a screenshot.

Opens the plugin's EMIT sample (285-band radiance cube with three injected CH4 plumes of known
strength), shows a true-colour composite, plots the spectrum of a plume pixel, runs Mag1c through the
Methane widget and prints the plume table next to the truth.

    xvfb-run -a .venv/bin/python examples/napari_emit_methane.py

The screenshot goes to ``docs/images/napari_emit.png`` (or the path given as the first argument).
"""

from __future__ import annotations

import sys
from pathlib import Path

import napari
import numpy as np
from qtpy.QtWidgets import QApplication

from hyperplex.geo.geodesy import ime_kg
from hyperplex.plugins._inspector import InspectorWidget
from hyperplex.plugins._methane_widget import MethaneWidget

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "docs/images/napari_emit.png"
CUBE = "EMIT radiance (synthetic)"


def print_table(viewer: napari.Viewer, table: dict) -> None:
    """Detected plumes next to the injected truth (plume id and IME over the truth footprint)."""
    truth_ids = viewer.layers["plume truth"].data
    truth_ppmm = viewer.layers["CH4 truth (ppm·m)"].data
    area = float(np.prod(viewer.layers[CUBE].scale[-2:]))
    for i, label in enumerate(table["label"]):
        tid = truth_ids[round(table["row"][i]), round(table["col"][i])]
        true_ime = ime_kg(truth_ppmm[truth_ids == tid], area) if tid else float("nan")
        print(f"plume {label}: {table['pixels'][i]} px, peak {table['peak'][i]:.0f} ppm·m, "
              f"IME {table['ime_kg'][i]:.0f} kg | truth plume {tid}: IME {true_ime:.0f} kg")  # fmt: skip


def main() -> None:
    viewer = napari.Viewer(title="hyperplex: synthetic EMIT scene")
    viewer.window.resize(1400, 820)
    viewer.open_sample("hyperplex", "emit")

    inspector = InspectorWidget(viewer)
    viewer.window.add_dock_widget(inspector, name="hyperplex: Inspector", area="right")
    inspector.select_stack(CUBE)
    inspector.select_channels([640.0, 550.0, 460.0])  # true colour
    inspector.apply_composite()

    methane = MethaneWidget(viewer)
    viewer.window.add_dock_widget(methane, name="hyperplex: Methane", area="right")
    methane.method_box.setCurrentText("mag1c")
    result = methane.run(blocking=True)

    cube = viewer.layers[CUBE]
    peak = max(range(len(result.table["label"])), key=lambda i: result.table["peak"][i])
    row, col = round(result.table["row"][peak]), round(result.table["col"][peak])
    inspector.select_stack(CUBE)
    inspector.show_profile(cube.data_to_world((0, row, col)))
    print_table(viewer, result.table)

    viewer.layers["CH4 mag1c (ppm·m)"].blending = "additive"  # the true-colour scene shows through
    plumes = viewer.layers["CH4 plumes (mag1c)"]
    plumes.contour = 1
    plumes.colormap = napari.utils.colormaps.DirectLabelColormap(color_dict={None: "cyan", 0: "transparent"})
    viewer.reset_view()
    QApplication.processEvents()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(OUT), canvas_only=False, flash=False)
    print(f"screenshot: {OUT}")
    viewer.close()


if __name__ == "__main__":
    main()
