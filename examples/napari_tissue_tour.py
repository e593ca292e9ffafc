"""A tour of the hyperplex napari plugin on the synthetic multiplex tissue; saves a screenshot.

Opens the plugin's tissue sample (8 marker channels, a 2-level pyramid, the matching H&E and the
cell masks), then drives the widgets through their Python methods, as a user would with the mouse:

1. Inspector: a three-marker additive composite with 1-99 % contrast per channel, and the marker
   intensities of the cell under a "click" plotted in the dock.
2. Models: channel-adaptive embeddings (an untrained ``chadavit_test`` preset; load a trained model
   file for meaningful features) computed tile by tile and shown as a PCA colour map.

Run it with a display, or headless under Xvfb::

    xvfb-run -a .venv/bin/python examples/napari_tissue_tour.py

The screenshot goes to ``docs/images/napari_tissue.png`` (or the path given as the first argument).
"""

from __future__ import annotations

import sys
from pathlib import Path

import napari
import numpy as np
import torch
from qtpy.QtWidgets import QApplication

from hyperplex.plugins._inspector import InspectorWidget
from hyperplex.plugins._models_widget import ModelsWidget

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "docs/images/napari_tissue.png"


def brightest_cell_centre(viewer: napari.Viewer, marker: str) -> tuple[float, float]:
    """World position (µm) of the cell with the highest mean ``marker`` signal."""
    cells = viewer.layers["cells (truth)"]
    signal = np.asarray(viewer.layers[marker].data[0])
    ids = cells.data.ravel()
    means = np.bincount(ids, signal.ravel()) / np.maximum(np.bincount(ids), 1)
    means[0] = -np.inf  # background
    rows, cols = np.nonzero(cells.data == int(np.argmax(means)))
    return tuple(cells.data_to_world((rows.mean(), cols.mean())))


def main() -> None:
    viewer = napari.Viewer(title="hyperplex: synthetic multiplex tissue")
    viewer.window.resize(1400, 820)
    viewer.open_sample("hyperplex", "tissue")

    inspector = InspectorWidget(viewer)
    viewer.window.add_dock_widget(inspector, name="hyperplex: Inspector", area="right")
    models = ModelsWidget(viewer)
    viewer.window.add_dock_widget(models, name="hyperplex: Models", area="right")
    torch.manual_seed(0)  # untrained preset: fix its random weights so the picture is reproducible
    models.preset_box.setCurrentText("chadavit_test")
    models.tile_box.setValue(128)
    models.overlap_box.setValue(32)
    models.compute_embeddings(blocking=True)
    viewer.layers["embeddings PCA (chadavit_test)"].visible = False  # toggle it on in the layer list

    inspector.refresh()
    inspector.select_stack("DAPI")
    inspector.select_channels(["DAPI", "CD3", "PanCK"])
    inspector.apply_composite()
    profile = inspector.show_profile(brightest_cell_centre(viewer, "CD3"))
    print(f"cell at row {profile.row}, col {profile.col}:",
          ", ".join(f"{n}={v:.0f}" for n, v in zip(profile.channels.names, profile.values)))  # fmt: skip

    viewer.reset_view()
    QApplication.processEvents()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(OUT), canvas_only=False, flash=False)
    print(f"screenshot: {OUT}")
    viewer.close()


if __name__ == "__main__":
    main()
