"""RGB images (H&E) are one colour image: marked RGB by every reader, one ``rgb=True`` layer in napari."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from hyperplex.bio import is_rgb, open_image, write_ome_tiff, write_ome_zarr
from hyperplex.bio.rgb import RGB_CHANNELS, looks_rgb, mark_rgb
from hyperplex.common.arrays import materialize
from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import InvalidParameterError
from hyperplex.plugins._reader import get_reader


@pytest.fixture(scope="module")
def he_dataset(tmp_path_factory):
    """The project's own synthetic H&E files (``hyperplex synth microscopy``), small."""
    from hyperplex.bio.synth import tissue, write_dataset

    sample = tissue(size=96, markers=2, seed=3)
    return sample, write_dataset(sample, tmp_path_factory.mktemp("he"), tile=32)


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (3, 40, 56), dtype=np.uint8)


def _layer(path):
    reader = get_reader(str(path))
    assert reader is not None, path
    (layer,) = reader(str(path))
    return layer


def _assert_rgb_layer(layer, expected_yx3, *, exact=True):
    data, kwargs, kind = layer
    level0 = materialize(data[0] if kwargs["multiscale"] else data)
    assert kind == "image" and kwargs["rgb"] is True and level0.shape == expected_yx3.shape
    assert kwargs["metadata"]["hyperplex"]["channels"]["names"] == ["R", "G", "B"]
    if exact:
        np.testing.assert_array_equal(level0, expected_yx3)
    else:
        assert np.abs(level0.astype(int) - expected_yx3).mean() < 6


@pytest.mark.parametrize("key", ["he_tiff", "he_zarr"])
def test_synthetic_he_opens_as_one_rgb_image_and_layer(he_dataset, key):
    sample, paths = he_dataset
    image = open_image(paths[key])
    assert is_rgb(image) and image.channels.names == ("R", "G", "B") and image.dtype == np.uint8
    assert image.pixel_size_um == (0.5, 0.5)
    np.testing.assert_array_equal(materialize(image.levels[0]), sample.he)
    _assert_rgb_layer(_layer(paths[key]), np.moveaxis(sample.he, 0, -1))
    data, kwargs, _ = _layer(paths[key])
    assert kwargs["scale"] == (0.5, 0.5) and kwargs["contrast_limits"] == (0, 255)


def test_the_multiplex_image_beside_it_is_not_rgb(he_dataset):
    _, paths = he_dataset
    assert not is_rgb(open_image(paths["multiplex_tiff"])) and not is_rgb(open_image(paths["multiplex_zarr"]))


def test_interleaved_plain_tiff_is_rgb(tmp_path, rgb):
    path = tmp_path / "snap.tif"
    tifffile.imwrite(path, np.moveaxis(rgb, 0, -1), photometric="rgb")
    image = open_image(path)
    assert image.format == "tiff-stack" and is_rgb(image)
    np.testing.assert_array_equal(materialize(image.levels[0]), rgb)
    _assert_rgb_layer(_layer(path), np.moveaxis(rgb, 0, -1))


def test_three_markers_are_not_rgb(tmp_path, rgb):
    """Three uint8 markers, three uint16 channels named R, G, B, a planar 3-page TIFF: not colour images."""
    markers = ChannelSet.from_names(["DAPI", "CD3", "CD8"])
    write_ome_zarr(tmp_path / "m.ome.zarr", rgb, markers, 0.5, chunks=32)
    write_ome_zarr(tmp_path / "u16.ome.zarr", rgb.astype(np.uint16), RGB_CHANNELS, 0.5, chunks=32)
    write_ome_tiff(tmp_path / "m.ome.tif", rgb, markers, 0.5, tile=32)
    tifffile.imwrite(tmp_path / "pages.tif", rgb, photometric="minisblack")
    for name in ("m.ome.zarr", "u16.ome.zarr", "m.ome.tif", "pages.tif"):
        image = open_image(tmp_path / name)
        assert not is_rgb(image), name
        data, kwargs, _ = _layer(tmp_path / name)
        assert "rgb" not in kwargs and kwargs["channel_axis"] == 0, name


def test_ome_zarr_labelled_red_green_blue_is_rgb(tmp_path, rgb):
    write_ome_zarr(tmp_path / "c.ome.zarr", rgb, ChannelSet.from_names(["Red", "Green", "Blue"]), 0.25, chunks=32)
    image = open_image(tmp_path / "c.ome.zarr")
    assert is_rgb(image) and image.pixel_size_um == (0.25, 0.25)


def test_planar_ome_tiff_named_rgb_is_rgb(tmp_path, rgb):
    write_ome_tiff(tmp_path / "p.ome.tif", rgb, RGB_CHANNELS, 0.5, tile=32, levels=2)
    image = open_image(tmp_path / "p.ome.tif")
    assert is_rgb(image) and image.n_levels == 2
    data, kwargs, _ = _layer(tmp_path / "p.ome.tif")
    assert kwargs["multiscale"] and [lvl.shape for lvl in data] == [(40, 56, 3), (20, 28, 3)]


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_png_and_jpeg_are_rgb(tmp_path, suffix):
    from PIL import Image

    yy, xx = np.mgrid[0:48, 0:64]
    smooth = np.stack([yy * 5, xx * 4, (yy + xx) * 2]).astype(np.uint8)  # smooth: JPEG keeps it close
    path = tmp_path / f"he{suffix}"
    Image.fromarray(np.moveaxis(smooth, 0, -1)).save(path)
    image = open_image(path)
    assert image.format == "png-jpeg" and is_rgb(image) and image.shape == (3, 48, 64) and image.name == "he"
    assert image.pixel_size is None
    level = materialize(image.levels[0])
    if suffix == ".png":
        np.testing.assert_array_equal(level, smooth)
    _assert_rgb_layer(_layer(path), np.moveaxis(smooth, 0, -1), exact=suffix == ".png")


def test_png_alpha_is_dropped_and_grey_is_one_channel(tmp_path):
    from PIL import Image

    rgba = np.zeros((8, 9, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 17
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    Image.fromarray(np.full((8, 9), 7, np.uint8)).save(tmp_path / "g.png")
    colour, grey = open_image(tmp_path / "a.png"), open_image(tmp_path / "g.png")
    assert is_rgb(colour) and materialize(colour.levels[0])[:, 0, 0].tolist() == [200, 0, 0]
    assert not is_rgb(grey) and grey.shape == (1, 8, 9) and int(materialize(grey.levels[0]).max()) == 7


def test_truncated_png_fails_with_the_file_name(tmp_path):
    from hyperplex.common.errors import FileFormatError

    path = tmp_path / "cut.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    with pytest.raises(FileFormatError, match="cut.png"):
        materialize(open_image(path).levels[0])
    assert get_reader(str(path)) is None


def test_rgb_layer_opens_in_a_viewer_model(he_dataset):
    from napari.components import ViewerModel

    sample, paths = he_dataset
    viewer = ViewerModel()
    data, kwargs, kind = _layer(paths["he_tiff"])
    layer = viewer.add_image(data, **kwargs)
    assert len(viewer.layers) == 1 and layer.rgb and layer.name == "he"
    np.testing.assert_array_equal(np.asarray(layer.data), np.moveaxis(sample.he, 0, -1))


def test_looks_rgb_and_mark_rgb():
    assert looks_rgb(RGB_CHANNELS, np.uint8) and looks_rgb(ChannelSet.from_names(["red", "green", "blue"]), "uint8")
    assert not looks_rgb(ChannelSet.from_names(["B", "G", "R"]), np.uint8)
    assert not looks_rgb(RGB_CHANNELS, np.float32)
    from hyperplex.common.image import MultiscaleImage

    four = MultiscaleImage([np.zeros((4, 2, 2), np.uint8)], ChannelSet.default(4))
    with pytest.raises(InvalidParameterError, match="3 channels"):
        mark_rgb(four)
