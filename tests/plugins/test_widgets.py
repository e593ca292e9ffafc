"""Widgets in a real napari viewer under Xvfb (pytest-xvfb): layers, names and metadata they add."""

from __future__ import annotations

import time

import numpy as np
import pytest

from hyperplex.common.image import MultiscaleImage
from hyperplex.plugins._layers import image_layer_data

pytestmark = pytest.mark.qt


def _wait_until_idle(widget, timeout=120.0):
    """Process Qt events until the widget's worker has finished (its ``finished`` handler clears it)."""
    from qtpy.QtWidgets import QApplication

    start = time.monotonic()
    while widget.worker is not None and time.monotonic() - start < timeout:
        QApplication.processEvents()
        time.sleep(0.01)
    assert widget.worker is None, "worker did not finish in time"


def _add(viewer, tuples):
    for data, kwargs, kind in tuples:
        getattr(viewer, f"add_{kind}")(data, **kwargs)


def test_inspector_plots_marker_intensities_and_builds_composite(qt_viewer, marker_image):
    from hyperplex.plugins._inspector import InspectorWidget

    viewer = qt_viewer()
    image, channels = marker_image
    _add(viewer, image_layer_data(MultiscaleImage([image], channels, pixel_size=(0.5, 0.5))))
    widget = InspectorWidget(viewer)
    assert widget.stack is not None and widget.channel_list.count() == 4
    profile = widget.show_profile((12.5, 10.0))
    np.testing.assert_array_equal(profile.values, image[:, 25, 20])
    assert [t.get_text() for t in widget.axes.get_xticklabels()] == list(channels.names)
    np.testing.assert_allclose(viewer.layers["inspected pixel"].data, [[12.5, 10.0]])
    widget.select_channels(["DAPI", "PanCK"])
    layers = widget.apply_composite()
    assert [layer.name for layer in layers] == ["DAPI", "PanCK"]
    assert [viewer.layers[n].visible for n in channels.names] == [True, False, False, True]
    assert all(layer.blending == "additive" for layer in layers)
    lo, hi = layers[1].contrast_limits
    assert lo < 4000 < hi  # PanCK's bright band is inside its 1-99 % window
    rgb_layer = widget.add_rgb_layer()
    assert rgb_layer.rgb and rgb_layer.data.shape == (96, 80, 3)
    np.testing.assert_array_less([0.9, 0.9], [rgb_layer.data[5, 20, 2], rgb_layer.data[65, 20, 0]])  # DAPI, PanCK
    assert rgb_layer.data[25, 20].max() < 0.1  # CD3 is not in the composite


def test_inspector_on_emit_cube_plots_spectrum_and_adds_band_layers(qt_viewer):
    from hyperplex.plugins._inspector import InspectorWidget
    from hyperplex.plugins._sample_data import emit_sample

    viewer = qt_viewer()
    _add(viewer, emit_sample())
    widget = InspectorWidget(viewer)
    widget.select_stack("EMIT radiance (synthetic)")
    sy, sx = widget.stack.layers[0].scale[-2:]
    profile = widget.show_profile((0, sy * 3, sx * 4))
    assert (profile.row, profile.col) == (3, 4)
    line = widget.axes.get_lines()[0]
    np.testing.assert_allclose(line.get_xdata(), widget.stack.channels.wavelengths)
    np.testing.assert_allclose(line.get_ydata(), profile.values)
    indices = widget.select_channels([2300.0, 1650.0, 860.0])
    layers = widget.apply_composite()
    assert [layer.name for layer in layers] == [f"composite: {widget.stack.channels.names[i]}" for i in sorted(indices)]
    tints = [tuple(layer.colormap.colors[-1][:3]) for layer in layers]
    assert tints == [(0.0, 0.0, 1.0), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0)]  # blue to red by wavelength
    assert tuple(layers[0].scale) == (sy, sx)
    widget.refresh()
    assert widget.stack_box.count() == 2  # cube + truth image; composite bands are not stacks


@pytest.fixture(scope="module")
def small_emit():
    from hyperplex.plugins._sample_data import emit_stack

    return emit_stack(lines=64, samples=64, seed=3)


def _emit_viewer(qt_viewer, small_emit):
    stack, scene = small_emit
    viewer = qt_viewer()
    _add(viewer, image_layer_data(stack))
    return viewer, scene


def test_methane_widget_blocking_run_finds_the_plumes(qt_viewer, small_emit):
    from hyperplex.plugins._methane_widget import MethaneWidget

    viewer, scene = _emit_viewer(qt_viewer, small_emit)
    widget = MethaneWidget(viewer)
    assert widget.cube_box.currentText() == "EMIT radiance (synthetic)"
    widget.method_box.setCurrentText("mag1c")
    result = widget.run(blocking=True)
    enhancement = viewer.layers["CH4 mag1c (ppm·m)"]
    plumes = viewer.layers["CH4 plumes (mag1c)"]
    assert enhancement.colorbar.visible and enhancement.metadata["hyperplex"]["units"] == "ppm·m"
    cube_scale = tuple(viewer.layers["EMIT radiance (synthetic)"].scale[-2:])
    assert tuple(enhancement.scale) == cube_scale == tuple(plumes.scale)
    for plume in scene.plumes:  # every injected plume's peak lies inside a detected plume
        assert plumes.data[round(plume["row"]), round(plume["col"])] > 0, plume
    assert not np.any((plumes.data > 0) & (scene.truth == 0))  # no detection outside the truth footprint
    assert widget.table.rowCount() == len(result.table["label"]) == plumes.data.max()
    assert list(plumes.features["ime_kg"]) == pytest.approx(list(result.table["ime_kg"]))
    assert widget.progress.value() == 100


def test_methane_widget_worker_thread_and_cancel(qt_viewer, small_emit):
    from hyperplex.plugins._methane_widget import MethaneWidget

    viewer, _ = _emit_viewer(qt_viewer, small_emit)
    widget = MethaneWidget(viewer)
    widget.method_box.setCurrentText("cem")
    widget.run()
    _wait_until_idle(widget)
    assert widget.last_result is not None and widget.last_result.units == "score"
    assert "CH4 cem (score)" in viewer.layers and "CH4 plumes (cem)" in viewer.layers
    widget.last_result = None
    widget.run()
    widget.cancel()
    _wait_until_idle(widget)
    assert widget.last_result is None and widget.status.text() == "cancelled"


@pytest.fixture(scope="module")
def small_tissue():
    from hyperplex.plugins._sample_data import tissue_stack

    return tissue_stack(size=128, seed=1, markers=5)


def _tissue_viewer(qt_viewer, small_tissue):
    from hyperplex.plugins._sample_data import he_layer

    stack, sample = small_tissue
    viewer = qt_viewer()
    _add(viewer, [he_layer(sample), *image_layer_data(stack)])
    return viewer, stack, sample


def test_models_widget_embeddings_add_a_pca_colour_map(qt_viewer, small_tissue):
    from hyperplex.plugins._models import presets_for
    from hyperplex.plugins._models_widget import ModelsWidget

    viewer, stack, _ = _tissue_viewer(qt_viewer, small_tissue)
    widget = ModelsWidget(viewer)
    assert widget.image_box.currentText().startswith(stack.channels.names[0])
    offered = [widget.preset_box.itemText(i) for i in range(widget.preset_box.count())]
    assert offered == presets_for("microscopy") and widget.preset_box.currentText() == offered[0]
    assert widget.embed_button.isEnabled() and not widget.predict_button.isEnabled()
    assert widget.kind_label.text() == f"microscopy (marker names), {len(stack.channels)} channels"
    assert offered[0] == "chadavit_tiny_patch8" and "pretrained" in widget.weights_label.text()
    assert widget.note_label.text().startswith("pretrained weights") and widget.tile_box.value() == 32
    widget.preset_box.setCurrentText("chadavit_test")
    note = widget.note_label.text()
    assert widget.weights_label.text().startswith("UNTRAINED") and "#ff9800" in widget.weights_label.styleSheet()
    assert "UNTRAINED (random weights): the colours show structure of the input, not learned meaning" in note
    assert "first three principal components" in note and "similar marker profiles" in note
    widget.tile_box.setValue(64)
    widget.overlap_box.setValue(16)
    result = widget.compute_embeddings(blocking=True)
    layer = viewer.layers["embeddings PCA (chadavit_test)"]
    assert layer.rgb and layer.data.shape == (16, 16, 3) and result.stride == 8
    assert tuple(layer.scale) == pytest.approx((4.0, 4.0))  # 8 px cells of 0.5 µm
    meta = layer.metadata["hyperplex"]
    assert meta["model"] == "chadavit_test" and meta["stride"] == 8
    assert sum(meta["explained_variance_ratio"]) <= 1.0 and np.ptp(layer.data) > 0.5
    assert "embeddings" not in widget.image_box.currentText()
    assert "first three principal components" in widget.status.text()


def test_models_widget_predicts_channels_from_he_with_a_saved_model(qt_viewer, small_tissue, tmp_path):
    from hyperplex.common.models import create_model
    from hyperplex.plugins._models import presets_for
    from hyperplex.plugins._models_widget import ModelsWidget

    path = tmp_path / "miphei.safetensors"
    create_model("miphei_test", markers=["Hoechst", "CD3e", "Pan-CK"]).save(path)
    viewer, _, sample = _tissue_viewer(qt_viewer, small_tissue)
    widget = ModelsWidget(viewer)
    widget.image_box.setCurrentText("H&E (synthetic) (RGB)")
    offered = [widget.preset_box.itemText(i) for i in range(widget.preset_box.count())]
    assert offered == presets_for("he") and widget.predict_button.isEnabled() and not widget.embed_button.isEnabled()
    assert "model card" in widget.note_label.text()  # the default H&E preset ships trained weights
    widget.preset_box.setCurrentText("miphei_test")
    assert "predicted markers carry no meaning" in widget.note_label.text()
    widget.path_edit.setText(str(path))
    assert widget.note_label.text() == "saved model miphei.safetensors: runs with the weights in the file"
    widget.tile_box.setValue(64)
    widget.predict_channels()
    _wait_until_idle(widget)
    names = ["Hoechst (predicted)", "CD3e (predicted)", "Pan-CK (predicted)"]
    assert all(name in viewer.layers for name in names)
    layer = viewer.layers["CD3e (predicted)"]
    assert layer.data.shape == sample.he.shape[1:] and np.isfinite(layer.data).all()
    assert tuple(layer.scale) == pytest.approx((0.5, 0.5)) and layer.blending == "additive"
    assert layer.metadata["hyperplex"]["index"] == 1 and layer.metadata["hyperplex"]["model"] == str(path)
    assert widget.progress.value() == 100
    assert widget.predict_button.isEnabled() and not widget.embed_button.isEnabled()
    cells = viewer.layers["cells (predicted)"]  # the predict-mif cell table, as points with features
    assert 0.5 * sample.count <= len(cells.data) <= 1.5 * sample.count
    assert {"cell_id", "area_px", "CD3e", "CD3e_positive"} <= set(cells.features.columns)
    assert tuple(cells.scale) == pytest.approx((0.5, 0.5)) and "cells" in widget.status.text()
    widget.predict_channels()  # a second run replaces its layers instead of adding copies
    _wait_until_idle(widget)
    assert sum(layer.name.startswith("CD3e (predicted)") for layer in viewer.layers) == 1


def test_sample_data_opens_through_napari(qt_viewer):
    viewer = qt_viewer()
    viewer.open_sample("hyperplex", "emit")
    cube = viewer.layers["EMIT radiance (synthetic)"]
    assert cube.data.shape == (285, 128, 128) and cube.metadata["hyperplex"]["index"] is None
    assert not viewer.layers["CH4 truth (ppm·m)"].visible
    viewer = qt_viewer()  # metres and micrometres in one viewer overflow napari's dims sliders
    viewer.open_sample("hyperplex", "tissue")
    markers = [layer for layer in viewer.layers if layer.metadata.get("hyperplex", {}).get("domain") == "bio"]
    assert [layer.name for layer in markers][:3] == ["DAPI", "CD3", "CD8"]
    assert all(layer.multiscale and layer.blending == "additive" for layer in markers)
    assert viewer.layers["H&E (synthetic)"].rgb


def test_screenshot_of_shown_viewer_shows_the_composite(qt_viewer, small_tissue):
    from qtpy.QtWidgets import QApplication

    from hyperplex.plugins._inspector import InspectorWidget

    stack, _ = small_tissue
    viewer = qt_viewer(show=True)
    _add(viewer, image_layer_data(stack))
    widget = InspectorWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Inspector")
    widget.select_channels(["DAPI", "CD3", "CD8"])
    widget.apply_composite()
    viewer.reset_view()
    QApplication.processEvents()
    shot = viewer.screenshot(canvas_only=True, flash=False)
    rgb = shot[..., :3].astype(float)
    assert rgb.mean() > 10, "composite rendered black"
    dominant = np.argmax(rgb, axis=-1)[rgb.max(axis=-1) > 60]
    assert len(np.unique(dominant)) >= 2  # blue DAPI nuclei and red/green membranes both show


def test_napari_opens_and_saves_through_the_plugin(qt_viewer, marker_image, tmp_path):
    """npe2 end to end: File > Open picks our reader; File > Save Selected Layers writes one OME-TIFF."""
    from hyperplex import bio

    image, channels = marker_image
    source = tmp_path / "in.ome.tif"
    bio.write_ome_tiff(source, image, channels, pixel_size_um=0.5, levels=2, tile=32)
    viewer = qt_viewer()
    viewer.open(str(source), plugin="hyperplex")
    assert [layer.name for layer in viewer.layers] == list(channels.names)
    assert all(layer.multiscale for layer in viewer.layers)
    viewer.layers.select_all()
    written = viewer.layers.save(str(tmp_path / "out.ome.tif"), selected=True, plugin="hyperplex")
    assert written == [str(tmp_path / "out.ome.tif")]
    reread = bio.open_image(written[0])
    assert reread.channels.names == channels.names and reread.pixel_size_um == pytest.approx((0.5, 0.5))
    np.testing.assert_array_equal(np.asarray(reread.levels[0]), image)
