import numpy as np
import pytest
import tifffile

from hyperplex.bio import detect_format, open_image, read_tiff_stack
from hyperplex.common.errors import ChannelMismatchError, DataNotFoundError

NAMES = ["DAPI", "CD3", "CD8", "PanCK"]


def test_multipage_stack_pages_are_channels(tmp_path, cube):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, cube, tile=(64, 64), resolution=(1e4 / 0.65, 1e4 / 0.65), resolutionunit="CENTIMETER")
    assert detect_format(path) == "tiff-stack"
    img = open_image(path)
    assert img.format == "tiff-stack" and img.shape == cube.shape
    assert list(img.channels) == ["c0", "c1", "c2", "c3"]
    assert img.pixel_size_um == pytest.approx((0.65, 0.65))
    np.testing.assert_array_equal(img.levels[0].compute(), cube)


def test_imagej_labels_and_micron_unit(tmp_path, cube):
    path = tmp_path / "ij.tif"
    md = {"axes": "CYX", "Labels": NAMES, "unit": "\\u00B5m"}
    tifffile.imwrite(path, cube, imagej=True, resolution=(1 / 0.3, 1 / 0.3), metadata=md)
    img = read_tiff_stack(path)
    assert list(img.channels) == NAMES and img.pixel_size_um == pytest.approx((0.3, 0.3))
    np.testing.assert_array_equal(img.levels[0].compute(), cube)


def test_inch_resolution_is_not_taken_as_a_pixel_size(tmp_path, cube):
    path = tmp_path / "dpi.tif"
    tifffile.imwrite(path, cube, resolution=(72, 72), resolutionunit="INCH")
    assert read_tiff_stack(path).pixel_size_um is None


def test_folder_of_single_channel_files(tmp_path, cube):
    folder = tmp_path / "planes"
    folder.mkdir()
    for i, name in enumerate(NAMES):
        tifffile.imwrite(folder / f"{i}_{name}.tif", cube[i])
    img = open_image(folder)
    assert list(img.channels) == [f"{i}_{n}" for i, n in enumerate(NAMES)]
    np.testing.assert_array_equal(img.levels[0].compute(), cube)
    renamed = read_tiff_stack(sorted(folder.iterdir()), channels=NAMES)
    assert list(renamed.channels) == NAMES
    with pytest.raises(ChannelMismatchError, match=r"2 channels but the data has 4"):
        read_tiff_stack(folder, channels=["a", "b"])


def test_folder_with_mismatched_sizes_names_the_file(tmp_path, cube):
    folder = tmp_path / "bad"
    folder.mkdir()
    tifffile.imwrite(folder / "a.tif", cube[0])
    tifffile.imwrite(folder / "b.tif", cube[1, :100])
    with pytest.raises(ChannelMismatchError, match=r"b.tif"):
        read_tiff_stack(folder)
    with pytest.raises(DataNotFoundError, match=r"empty"):
        (tmp_path / "empty").mkdir()
        read_tiff_stack(tmp_path / "empty")


def test_plain_rgb_tiff_reads_as_r_g_b(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "snap.tif", rgb, photometric="rgb")
    img = open_image(tmp_path / "snap.tif")
    assert list(img.channels) == ["R", "G", "B"] and img.shape == (3, 40, 50)
    np.testing.assert_array_equal(img.levels[0].compute(), np.moveaxis(rgb, -1, 0))


def test_aperio_style_rgb_slide_gets_its_microns_per_pixel(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (256, 320, 3), dtype=np.uint8)
    desc = "Aperio Image Library v11.2.1 \n320x256 [0,0 320x256] (128x128) RAW/RGB|AppMag = 20|MPP = 0.4990"
    tifffile.imwrite(tmp_path / "slide.svs", rgb, tile=(128, 128), photometric="rgb", description=desc)
    img = open_image(tmp_path / "slide.svs")
    assert img.format == "tiff-stack" and list(img.channels) == ["R", "G", "B"]
    assert img.pixel_size_um == (0.499, 0.499)
    np.testing.assert_array_equal(
        img.levels[0][:, 100:140, 200:260].compute(), np.moveaxis(rgb, -1, 0)[:, 100:140, 200:260]
    )


def test_folder_with_a_single_ome_tiff_opens_that_file(tmp_path):
    import numpy as np

    from hyperplex.bio import open_image, write_ome_tiff

    data = np.arange(3 * 32 * 32, dtype=np.uint16).reshape(3, 32, 32)
    folder = tmp_path / "one"
    write_ome_tiff(folder / "slide.ome.tif", data, ["DAPI", "CD3", "CD8"], pixel_size_um=0.5)
    image = open_image(folder)
    assert image.channels.names == ("DAPI", "CD3", "CD8") and image.format == "ome-tiff"
    np.testing.assert_array_equal(image.levels[0].compute(), data)
