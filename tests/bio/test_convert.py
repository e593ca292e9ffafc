"""Conversions and less common layouts: lazy TIFF -> Zarr, z-stacks, unusual names, writer validation."""

import numpy as np
import pytest
import tifffile

from hyperplex.bio import (
    MultiscaleImage,
    open_image,
    pyramid,
    read_ome_tiff,
    write_ome_tiff,
    write_ome_zarr,
)
from hyperplex.bio.pyramid import auto_levels
from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import ChannelMismatchError, FileFormatError, InvalidParameterError

NAMES = ["DAPI", "CD3", "CD8", "PanCK"]


def test_ome_tiff_to_ome_zarr_keeps_every_level(tmp_path, cube):
    src = open_image(write_ome_tiff(tmp_path / "s.ome.tif", cube, NAMES, (0.4, 0.4), tile=64, levels=3))
    dst = open_image(write_ome_zarr(tmp_path / "d.ome.zarr", src, chunks=64))
    assert list(dst.channels) == NAMES and dst.pixel_size_um == (0.4, 0.4)  # zarr adds default colours
    assert len(dst.levels) == 3
    for a, b in zip(src.levels, dst.levels):
        np.testing.assert_array_equal(a.compute(), b.compute())
    # and back to OME-TIFF from the lazy zarr levels
    back = open_image(write_ome_tiff(tmp_path / "b.ome.tif", dst, tile=64, compression="zstd"))
    np.testing.assert_array_equal(back.levels[2].compute(), src.levels[2].compute())


def test_ome_tiff_zstack_needs_a_plane(tmp_path):
    data = np.arange(3 * 2 * 32 * 48, dtype=np.uint16).reshape(3, 2, 32, 48)  # Z, C, Y, X
    path = tmp_path / "z.ome.tif"
    tifffile.imwrite(path, data, ome=True, metadata={"axes": "ZCYX", "Channel": {"Name": ["a", "b"]}})
    with pytest.raises(FileFormatError, match=r"z\.ome\.tif.*select"):
        read_ome_tiff(path)
    img = read_ome_tiff(path, select={"Z": 2})
    assert list(img.channels) == ["a", "b"]
    np.testing.assert_array_equal(img.levels[0].compute(), data[2])


def test_unusual_channel_names_survive_both_formats(tmp_path, cube):
    names = ["DAPI (nuclei)", "CD3 & CD8", "Granzyme B <µ>", "PD-L1/\u03b3"]
    for writer, name in ((write_ome_tiff, "u.ome.tif"), (write_ome_zarr, "u.ome.zarr")):
        img = open_image(writer(tmp_path / name, cube, names, levels=1))
        assert list(img.channels) == names


def test_single_channel_2d_input(tmp_path, cube):
    img = open_image(write_ome_tiff(tmp_path / "one.ome.tif", cube[0], ["DAPI"], 0.5, tile=64, levels=2))
    assert img.shape == (1, 300, 260) and list(img.channels) == ["DAPI"]
    np.testing.assert_array_equal(img.levels[0].compute()[0], cube[0])


def test_xarray_input_brings_its_channels(tmp_path, cube):
    src = MultiscaleImage(pyramid(cube, 1), ChannelSet.from_names(NAMES)).to_xarray()
    img = open_image(write_ome_zarr(tmp_path / "x.ome.zarr", src, levels=1))
    assert list(img.channels) == NAMES


def test_writer_validation(tmp_path, cube):
    with pytest.raises(ChannelMismatchError):
        write_ome_tiff(tmp_path / "a.ome.tif", cube, ["only", "three", "names"])
    with pytest.raises(InvalidParameterError, match="tile"):
        write_ome_tiff(tmp_path / "a.ome.tif", cube, tile=100)
    with pytest.raises(InvalidParameterError, match="rgb"):
        write_ome_tiff(tmp_path / "a.ome.tif", cube, rgb=True)
    with pytest.raises(InvalidParameterError, match="pixel_size_um"):
        write_ome_zarr(tmp_path / "a.ome.zarr", cube, pixel_size_um=-1)
    with pytest.raises(InvalidParameterError, match="cells"):
        write_ome_zarr(tmp_path / "a.ome.zarr", cube, labels={"cells": np.zeros((10, 10), np.int32)})
    assert not list(tmp_path.iterdir())  # failed writes leave nothing behind


def test_pyramid_mean_and_levels():
    arr = np.arange(2 * 6 * 5, dtype=np.uint16).reshape(2, 6, 5)
    levels = pyramid(arr, 2)
    expected = arr[:, :6, :4].reshape(2, 3, 2, 2, 2).mean(axis=(2, 4))
    np.testing.assert_array_equal(levels[1].compute(), np.round(expected).astype(np.uint16))
    assert auto_levels((3, 2048, 1000), 256) == 3
    assert [lvl.shape for lvl in pyramid(arr, 2, "nearest")] == [(2, 6, 5), (2, 3, 2)]


def test_spectral_channels_keep_wavelengths(tmp_path, cube):
    """Hyperspectral bands written as microscopy files keep their centre wavelengths (nm)."""
    bands = ChannelSet.from_wavelengths([450.5, 550.0, 650.25, 2300.0])
    for writer, name in ((write_ome_tiff, "w.ome.tif"), (write_ome_zarr, "w.ome.zarr")):
        img = open_image(writer(tmp_path / name, cube, bands, levels=1))
        assert img.channels.is_spectral and list(img.channels) == list(bands)
        np.testing.assert_allclose(img.channels.wavelengths, bands.wavelengths)
