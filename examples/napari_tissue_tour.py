"""A tour of the hyperplex napari plugin on the synthetic multiplex tissue; saves a screenshot.

Opens the plugin's tissue sample (8 marker channels, a 2-level pyramid, the matching H&E and the
cell masks), then drives the widgets through their Python methods, as a user would with the mouse:

1. Inspector: a three-marker additive composite with 1-99 % contrast per channel, and the marker
   intensities of the cell under a "click" plotted in the dock.
2. Models: channel-adaptive embeddings (an untrained ``chadavit_test`` preset; load a trained model
   file for meaningful features) computed tile by tile and shown as a PCA colour map, and marker
   channels predicted from the H&E by a MIPHEI model (``miphei_test``, untrained) as new layers.

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


def brightest_cell_pixel(viewer: napari.Viewer, marker: str) -> tuple[float, float]:
    """World position (µm) of the brightest ``marker`` pixel in the cell with the highest mean ``marker``."""
    cells = viewer.layers["cells (truth)"].data
    signal = np.asarray(viewer.layers[marker].data[0])
    ids = cells.ravel()
    means = np.bincount(ids, signal.ravel()) / np.maximum(np.bincount(ids), 1)
    means[0] = -np.inf  # background
    inside = np.where(cells == int(np.argmax(means)), signal, -np.inf)
    row, col = np.unravel_index(np.argmax(inside), inside.shape)
    return tuple(viewer.layers[marker].data_to_world((row, col)))


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
    models.preset_box.setCurrentText("miphei_test")  # H&E -> markers (untrained: shows the mechanics only)
    models.he_box.setCurrentText("H&E (synthetic)")
    models.predict_channels(blocking=True)
    for layer in viewer.layers:
        if layer.name.endswith("(predicted)"):
            layer.visible = False

    inspector.refresh()
    inspector.select_stack("DAPI")
    inspector.select_channels(["DAPI", "CD3", "PanCK"])
    inspector.apply_composite()
    profile = inspector.show_profile(brightest_cell_pixel(viewer, "CD3"))
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
