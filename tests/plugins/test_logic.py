"""Qt-free plugin logic: layer-data conversion, stacks and spectra, composites, PCA colour maps, plumes, writers."""

from __future__ import annotations

import numpy as np
import pytest

from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import ChannelMismatchError, InvalidParameterError
from hyperplex.common.image import MultiscaleImage
from hyperplex.geo.methane.registry import get_method, list_methods
from hyperplex.plugins._composite import additive_composite, composite_colors, percentile_limits
from hyperplex.plugins._embedding import pca_rgb
from hyperplex.plugins._layers import MAX_CHANNEL_LAYERS, image_layer_data
from hyperplex.plugins._methane import analyze_cube
from hyperplex.plugins._stacks import find_stacks, pixel_profile
from hyperplex.plugins._writer import layers_to_array


def _viewer_with(*tuples_lists):
    from napari.components import ViewerModel

    viewer = ViewerModel()
    for tuples in tuples_lists:
        for data, kwargs, kind in tuples:
            getattr(viewer, f"add_{kind}")(data, **kwargs)
    return viewer


# ---------------------------------------------------------------- layer data
def test_few_channels_become_named_additive_layers(marker_image):
    image, channels = marker_image
    (layer,) = image_layer_data(MultiscaleImage([image], channels, (0.5, 0.5)))
    data, kwargs, kind = layer
    assert data is image and kind == "image"
    assert kwargs["channel_axis"] == 0 and kwargs["name"] == list(channels.names)
    assert kwargs["blending"] == "additive" and kwargs["multiscale"] is False
    assert len(set(kwargs["colormap"])) == 4
    assert [m["hyperplex"]["index"] for m in kwargs["metadata"]] == [0, 1, 2, 3]
    assert len({m["hyperplex"]["stack"] for m in kwargs["metadata"]}) == 1


def test_many_bands_become_one_band_axis_layer():
    wl = np.linspace(400, 2500, MAX_CHANNEL_LAYERS + 1)
    cube = np.random.default_rng(0).random((wl.size, 8, 9)).astype(np.float32)
    (layer,) = image_layer_data(MultiscaleImage([cube], ChannelSet.from_wavelengths(wl), (60.0, 60.0), units="meter"))
    _, kwargs, _ = layer
    assert "channel_axis" not in kwargs and kwargs["axis_labels"] == ("band", "y", "x")
    assert kwargs["scale"] == (1.0, 60.0, 60.0)
    np.testing.assert_allclose(kwargs["metadata"]["hyperplex"]["channels"]["wavelengths"], wl)


def test_own_channel_colours_are_kept(marker_image):
    image, _ = marker_image
    channels = ChannelSet.from_names(["a", "b", "c", "d"], colors=["#FF0000", "#00FF00", "#0000FF", "#FFFFFF"])
    (layer,) = image_layer_data(MultiscaleImage([image], channels))
    assert layer[1]["colormap"] == ["#ff0000", "#00ff00", "#0000ff", "#ffffff"]


# ---------------------------------------------------------------- stacks and spectra
def test_pixel_profile_reads_every_channel_at_the_clicked_pixel(marker_image):
    image, channels = marker_image
    viewer = _viewer_with(image_layer_data(MultiscaleImage([image], channels, (0.5, 0.5))))
    (stack,) = find_stacks(viewer.layers)
    assert stack.channels == channels and not stack.band_axis
    profile = pixel_profile(stack, (12.5, 10.0))  # world (µm) -> row 25, col 20
    assert (profile.row, profile.col) == (25, 20)
    np.testing.assert_array_equal(profile.values, image[:, 25, 20])
    assert profile.xlabel == "channel"
    assert pixel_profile(stack, (-5.0, 10.0)) is None
    assert pixel_profile(stack, (12.5, 1000.0)) is None


def test_spectral_profile_of_band_axis_cube_uses_wavelengths():
    from hyperplex.plugins._sample_data import emit_sample

    viewer = _viewer_with(emit_sample())
    stacks = find_stacks(viewer.layers)
    cube = next(s for s in stacks if s.band_axis)
    assert len(cube.channels) == 285 and cube.channels.is_spectral
    sy, sx = cube.layers[0].scale[-2:]
    profile = pixel_profile(cube, (0, sy * 7, sx * 11))
    assert (profile.row, profile.col) == (7, 11)
    np.testing.assert_array_equal(profile.values, np.asarray(cube.layers[0].data)[:, 7, 11])
    assert profile.x[0] == pytest.approx(cube.channels.wavelengths[0])
    assert profile.xlabel == "wavelength (nm)"


def test_deleting_a_channel_layer_shrinks_the_stack(marker_image):
    image, channels = marker_image
    viewer = _viewer_with(image_layer_data(MultiscaleImage([image], channels)))
    viewer.add_image(np.zeros((5, 5)), name="other")
    viewer.layers.remove("CD3")
    stacks = find_stacks(viewer.layers)
    assert stacks[0].channels.names == ("DAPI", "CD20", "PanCK")
    assert stacks[1].channels.names == ("other",)
    np.testing.assert_array_equal(pixel_profile(stacks[0], (25, 20)).values, image[[0, 2, 3], 25, 20])


# ---------------------------------------------------------------- composites
def test_additive_composite_matches_reference_equation():
    a = np.full((2, 3), 5.0)
    b = np.array([[0.0, 10.0, 20.0], [np.nan, 10.0, 10.0]])
    rgb = additive_composite([a, b], ["#ff0000", "#ffff00"], [(0.0, 10.0), (0.0, 10.0)])
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.float32
    np.testing.assert_allclose(rgb[0, 0], [0.5, 0.0, 0.0])
    np.testing.assert_allclose(rgb[0, 1], [1.0, 1.0, 0.0])  # 0.5 + 1.0 clipped to 1
    np.testing.assert_allclose(rgb[1, 0], [0.5, 0.0, 0.0])  # NaN counts as black


def test_composite_rejects_mismatched_inputs():
    with pytest.raises(ChannelMismatchError):
        additive_composite([np.zeros((2, 2))], ["#ff0000", "#00ff00"])
    with pytest.raises(ChannelMismatchError):
        additive_composite([np.zeros((2, 2)), np.zeros((3, 2))], ["#ff0000", "#00ff00"])
    with pytest.raises(InvalidParameterError):
        percentile_limits(np.zeros((2, 2)), 50, 10)


def test_composite_colours_run_blue_to_red_by_wavelength():
    channels = ChannelSet.from_wavelengths([2300.0, 860.0, 1650.0])
    assert composite_colors(channels) == ["#ff0000", "#0000ff", "#00ff00"]
    assert percentile_limits(np.arange(101.0), 10, 90) == pytest.approx((10.0, 90.0))


# ---------------------------------------------------------------- PCA colour map
def test_pca_rgb_recovers_the_dominant_latent_map():
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((3, 20, 30)) * np.array([10.0, 3.0, 1.0])[:, None, None]
    mixing = np.linalg.qr(rng.standard_normal((16, 16)))[0][:, :3]  # orthonormal columns
    features = np.einsum("dk,khw->dhw", mixing, latent) + 0.01 * rng.standard_normal((16, 20, 30))
    rgb, ratio = pca_rgb(features)
    assert rgb.shape == (20, 30, 3) and 0.0 <= rgb.min() and rgb.max() <= 1.0
    assert ratio[0] > ratio[1] > ratio[2] > 0
    assert abs(np.corrcoef(rgb[..., 0].ravel(), latent[0].ravel())[0, 1]) > 0.95
    np.testing.assert_array_equal(pca_rgb(features)[0], rgb)  # deterministic signs


# ---------------------------------------------------------------- writers
def test_layers_to_array_and_writer_round_trip(tmp_path, marker_image):
    from hyperplex.plugins._reader import get_reader
    from hyperplex.plugins._writer import write_ome_tiff, write_ome_zarr

    image, channels = marker_image
    viewer = _viewer_with(image_layer_data(MultiscaleImage([image], channels, (0.5, 0.5))))
    tuples = [layer.as_layer_data_tuple() for layer in viewer.layers]
    array, cs, pixel_size = layers_to_array(tuples)
    np.testing.assert_array_equal(array, image)
    assert cs.names == channels.names and pixel_size == (0.5, 0.5)
    for writer, name in ((write_ome_tiff, "out.ome.tif"), (write_ome_zarr, "out.ome.zarr")):
        written = writer(str(tmp_path / name), tuples)
        (layer,) = get_reader(written[0])(written[0])
        data, kwargs, _ = layer
        level0 = data[0] if isinstance(data, list) else data
        np.testing.assert_array_equal(np.asarray(level0), image)
        assert kwargs["name"] == list(channels.names)
        assert kwargs["scale"] == pytest.approx((0.5, 0.5))


def test_layers_to_array_rejects_mismatched_layers():
    a = (np.zeros((4, 4)), {"name": "a"}, "image")
    b = (np.zeros((5, 4)), {"name": "b"}, "image")
    with pytest.raises(ChannelMismatchError):
        layers_to_array([a, b])
    with pytest.raises(InvalidParameterError):
        layers_to_array([(np.zeros((4, 4), int), {"name": "l"}, "labels")])


@pytest.fixture(scope="module")
def emit128():
    from hyperplex.plugins._sample_data import emit_stack

    return emit_stack(lines=128, samples=128, seed=0)


@pytest.mark.parametrize("method", [m for m in list_methods() if m != "mag1c"])  # mag1c: the mass test below
def test_each_method_runs_and_its_plumes_cover_the_injected_sources(emit128, method):
    stack, scene = emit128
    result = analyze_cube(method, stack.levels[0], scene.wavelengths, scene.fwhm, pixel_size_m=60.0)
    assert result.units == get_method(method).units and result.enhancement.shape == (128, 128)
    labels = result.labels
    assert all(labels[round(p["row"]), round(p["col"])] > 0 for p in scene.plumes)
    outside = np.sum((labels > 0) & (scene.truth == 0))
    if get_method(method).threshold is None:  # filters: plume pixels only where methane was injected
        assert outside == 0
    else:  # learned segmenters draw slightly wider blobs: a thin rim outside the injected plume at most
        assert outside <= 0.05 * np.sum(labels > 0)
    table = result.table
    np.testing.assert_array_equal(table["pixels"], [np.sum(labels == i) for i in table["label"]])
    assert set(table["confidence"]) <= {"high", "medium", "low"}


def test_plume_table_mass_matches_truth(emit128):
    """The widget's IME is the pipeline's unbiased one: within 30 % of the injected mass."""
    stack, scene = emit128
    result = analyze_cube("mag1c", stack.levels[0], scene.wavelengths, scene.fwhm, pixel_size_m=60.0)
    for plume in scene.plumes:
        ids = set(np.unique(result.labels[scene.plume_labels == plume["id"]])) - {0}
        rows = [i for i, label in enumerate(result.table["label"]) if label in ids]
        ime = sum(result.table["ime_kg"][rows])
        truth = plume["ime_kg"] * 3600.0 / scene.pixel_area_m2  # same plume on 60 m pixels
        assert ime == pytest.approx(truth, rel=0.3)


def test_analyze_cube_rejects_unknown_method_and_bad_window(emit128):
    stack, scene = emit128
    with pytest.raises(InvalidParameterError, match="Unknown methane method"):
        analyze_cube("nope", stack.levels[0], scene.wavelengths, scene.fwhm)
    with pytest.raises(InvalidParameterError, match="0 < min < max"):
        analyze_cube("mf", stack.levels[0], scene.wavelengths, scene.fwhm, window=(2400.0, 2100.0))


# ---------------------------------------------------------------- models: presets suited to the image
def _run(steps):
    try:
        while True:
            next(steps)
    except StopIteration as stop:
        return stop.value


def test_presets_offered_follow_the_image_kind():
    pytest.importorskip("torch")
    from hyperplex.common.models import preset_info
    from hyperplex.plugins._models import input_kind, presets_for

    assert input_kind(ChannelSet.from_names(["DAPI", "CD3"])) == "microscopy"
    assert input_kind(ChannelSet.from_wavelengths([450.0, 550.0])) == "hyperspectral"
    assert input_kind(None) == "he"
    offered = {kind: presets_for(kind) for kind in ("microscopy", "hyperspectral", "he")}
    for kind, names in offered.items():
        assert names and all(preset_info(n).input == kind for n in names)
        assert not names[0].endswith("_test") and names[-1].endswith("_test")  # a real default, tiny ones last
    assert not set(offered["microscopy"]) & (set(offered["hyperspectral"]) | set(offered["he"]))
    assert "chadavit_test" in offered["microscopy"] and "hypersegformer_b0" not in offered["microscopy"]
    for names in offered.values():  # pretrained presets first: the default is one whenever the kind has one
        flags = [preset_info(n).pretrained for n in names]
        assert flags == sorted(flags, reverse=True)
    assert offered["microscopy"][0] == "chadavit_tiny_patch8" and preset_info("chadavit_tiny_patch8").pretrained


@pytest.mark.parametrize("preset", ["default", "chadavit_test", "channelvit_test"])
def test_embeddings_of_a_12_marker_image(preset):
    """The reported failures: the default preset had 10 slots, ChannelViT only knew c0..c7."""
    torch = pytest.importorskip("torch")
    from hyperplex.plugins._models import compute_embeddings, model_note, presets_for, resolve_model

    channels = ChannelSet.from_names([f"CD{i}" for i in range(12)])
    image = np.random.default_rng(0).random((12, 64, 64)).astype(np.float32)
    name = presets_for("microscopy")[0] if preset == "default" else preset
    torch.manual_seed(0)
    model = resolve_model(name, channels)
    steps = compute_embeddings(model, name, image, channels, image, tile_size=64, overlap=0)
    result = _run(steps)
    cells = 64 // model.feature_stride
    assert result.rgb.shape == (cells, cells, 3) and np.isfinite(result.rgb).all() and result.note is None
    note = model_note(name, channels)
    if preset == "default":
        assert note.startswith("pretrained weights (chadavit_tiny_patch8.md is the model card); trained on 32 px")
        assert "groups" not in note and not model.training
    else:
        assert note.startswith("UNTRAINED (random weights): the colours show structure of the input, not learned")
    if preset == "channelvit_test":
        assert model.channel_vocab == list(channels.names) and "carry no meaning" in note


def test_more_markers_than_slots_are_embedded_in_groups_and_averaged(tmp_path):
    """A 16-slot model on 20 markers: two groups of 10, maps averaged by group size (the known answer)."""
    torch = pytest.importorskip("torch")
    from hyperplex.common.models import create_model, tiled_feature_map
    from hyperplex.plugins._embedding import pca_rgb
    from hyperplex.plugins._models import channel_groups, channel_stats, compute_embeddings, resolve_model

    torch.manual_seed(0)
    path = tmp_path / "chada16.safetensors"
    create_model("chadavit_test").save(path)  # 16 slots, used as saved
    model = resolve_model(str(path))
    channels = ChannelSet.from_names([f"m{i}" for i in range(20)])
    image = np.random.default_rng(1).gamma(2.0, 50.0, (20, 48, 48)).astype(np.float32)
    groups = channel_groups(model, 20)
    assert [g.tolist() for g in groups] == [list(range(10)), list(range(10, 20))]
    assert len(channel_groups(model, 16)) == 1 and channel_groups(create_model("channelvit_test"), 99)[0].size == 99
    result = _run(compute_embeddings(model, "chada16", image, channels, image, tile_size=32, overlap=8))
    assert "20 markers embedded in 2 groups of <= 16, averaged" in result.note
    mean, std = channel_stats(image)
    maps = [
        tiled_feature_map(model, image[g], channels[g], tile_size=32, overlap=8,
                          transform=lambda t, g=g: (t - mean[g, None, None]) / std[g, None, None])
        for g in groups
    ]  # fmt: skip
    expected, _ = pca_rgb(0.5 * maps[0] + 0.5 * maps[1])
    np.testing.assert_allclose(result.rgb, expected, atol=1e-4)


def test_model_note_for_he_and_saved_models(tmp_path):
    pytest.importorskip("torch")
    from hyperplex.common.models import create_model
    from hyperplex.plugins._models import model_note, resolve_model

    assert model_note("miphei_test", None).startswith("UNTRAINED (random weights): the predicted markers carry no")
    assert "Unknown model preset" in model_note("nope", None)
    path = tmp_path / "chada.safetensors"
    create_model("chadavit_test").save(path)
    assert (
        model_note(str(path), ChannelSet.from_names(["a"]))
        == "saved model chada.safetensors: runs with the weights in the file"
    )
    assert resolve_model(str(path), ChannelSet.from_names(["a"] * 1)).config["max_channels"] == 16  # used as saved
