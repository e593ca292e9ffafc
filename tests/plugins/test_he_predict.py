"""The Models widget's H&E action without Qt: the predict-mif pipeline on an RGB layer, its layers in a ViewerModel."""

from __future__ import annotations

import numpy as np
import pytest


def _run(steps):
    fractions = []
    try:
        while True:
            fractions.append(next(steps)[0])
    except StopIteration as stop:
        return stop.value, fractions


def test_predict_layer_adds_markers_and_cells_with_features(tmp_path):
    torch = pytest.importorskip("torch")
    from napari.components import ViewerModel

    from hyperplex.bio.synth import tissue
    from hyperplex.common.models import create_model
    from hyperplex.plugins._he_predict import predict_layer, slide_layers

    sample = tissue(size=96, markers=2, seed=2)
    torch.manual_seed(0)
    create_model("miphei_test", markers=["Hoechst", "Pan-CK"]).save(tmp_path / "m.safetensors")
    viewer = ViewerModel()
    he = viewer.add_image(np.moveaxis(sample.he, 0, -1), rgb=True, name="H&E", scale=(0.5, 0.5))
    he.units = ("micrometer", "micrometer")
    steps = predict_layer(he, str(tmp_path / "m.safetensors"), tile=32, overlap=8, out=tmp_path / "p.ome.zarr")
    prediction, fractions = _run(steps)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) > 5
    for data, kwargs, kind in slide_layers(prediction):
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    assert [layer.name for layer in viewer.layers] == ["H&E", "Hoechst (predicted)", "Pan-CK (predicted)",
                                                       "cells (predicted)"]  # fmt: skip
    marker, cells = viewer.layers["Pan-CK (predicted)"], viewer.layers["cells (predicted)"]
    assert marker.data.shape == (96, 96) and marker.blending == "additive" and tuple(marker.scale) == (0.5, 0.5)
    assert marker.metadata["hyperplex"]["model"].endswith("m.safetensors")
    assert len(cells.data) == prediction.result.cells > 0 and cells.features["cell_id"].is_unique
    assert {"Pan-CK", "Pan-CK_positive", "centroid_y_um"} <= set(cells.features.columns)
    np.testing.assert_allclose(cells.data, cells.features[["centroid_y", "centroid_x"]].to_numpy())
