import re

import numpy as np
import pytest
import tifffile

from hyperplex.bio import downsample, open_image, read_ome_tiff, write_ome_tiff
from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import ChannelMismatchError, DataNotFoundError, FileFormatError

NAMES = ["DAPI", "CD3", "CD8", "PanCK"]


def test_round_trip_keeps_data_names_and_pixel_size(tmp_path, cube):
    path = write_ome_tiff(tmp_path / "img.ome.tif", cube, NAMES, (0.5, 0.25), tile=64, levels=3)
    with read_ome_tiff(path) as img:
        assert img.format == "ome-tiff"
        assert img.shape == cube.shape and img.dtype == cube.dtype
        assert list(img.channels) == NAMES
        assert img.pixel_size_um == (0.5, 0.25)
        np.testing.assert_array_equal(img.levels[0].compute(), cube)
        # every level is in the file and equals the 2x2 mean pyramid of the input
        assert [lvl.shape for lvl in img.levels] == [(4, 300, 260), (4, 150, 130), (4, 75, 65)]
        expected = downsample(downsample(cube))
        np.testing.assert_array_equal(img.levels[2].compute(), expected.compute())
        assert img.level_pixel_size(2) == (2.0, 1.0)
        # chunks are the TIFF tiles
        assert img.levels[0].chunksize == (1, 64, 64)


def test_pyramid_is_stored_as_subifds_readable_by_tifffile(tmp_path, cube):
    path = write_ome_tiff(tmp_path / "img.ome.tif", cube, NAMES, 0.5, tile=64, levels=3, compression="zstd")
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome and len(tif.series) == 1
        assert [lvl.shape for lvl in tif.series[0].levels] == [(4, 300, 260), (4, 150, 130), (4, 75, 65)]
        assert len(tif.pages) == 4 and all(len(p.subifds) == 2 for p in tif.pages)
        assert tif.pages[0].is_tiled and tif.pages[0].compression == tifffile.COMPRESSION.ZSTD


def test_colours_and_wavelengths_round_trip(tmp_path, cube):
    chans = ChannelSet(tuple(NAMES), colors=("#0000FF", "#FF0000", "#00FF00", "#FFFF00"))
    with open_image(write_ome_tiff(tmp_path / "c.ome.tif", cube, chans, tile=64, levels=1)) as img:
        assert img.channels == chans
        assert img.pixel_size_um is None


def test_rgb_he_is_interleaved_and_reads_as_three_channels(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (3, 130, 100), dtype=np.uint8)
    path = write_ome_tiff(tmp_path / "he.ome.tif", rgb, pixel_size_um=0.5, rgb=True, tile=32, levels=2)
    with tifffile.TiffFile(path) as tif:
        assert tif.series[0].axes == "YXS" and tif.pages[0].photometric == tifffile.PHOTOMETRIC.RGB
    with open_image(path) as img:
        assert list(img.channels) == ["R", "G", "B"]
        np.testing.assert_array_equal(img.levels[0].compute(), rgb)
        assert img.levels[1].shape == (3, 65, 50)


def test_xarray_view_has_channel_and_micrometre_coords(tmp_path, cube):
    with open_image(write_ome_tiff(tmp_path / "x.ome.tif", cube, NAMES, 0.5, tile=64, levels=2)) as img:
        xa = img.to_xarray(level=1)
        assert xa.dims == ("c", "y", "x") and list(xa.c.values) == NAMES
        assert xa.x.values[1] - xa.x.values[0] == pytest.approx(1.0)
        assert ChannelSet.from_xarray(xa) == img.channels
        np.testing.assert_array_equal(xa.sel(c="CD8").values, img.levels[1][2].compute())


def test_channel_mismatch_names_the_file(tmp_path, cube):
    path = write_ome_tiff(tmp_path / "bad.ome.tif", cube, NAMES, tile=64, levels=1)
    xml = tifffile.tiffcomment(path)
    # drop the last two <Channel> elements: the OME-XML then names 2 channels for 4 planes
    cut = re.sub(r'<Channel ID="Channel:0:[23]"[^>]*>(<LightPath/>)?(</Channel>)?', "", xml)
    assert cut.count("<Channel ") == 2
    tifffile.tiffcomment(path, cut.encode())
    with pytest.raises(ChannelMismatchError, match=r"bad.ome.tif"):
        read_ome_tiff(path)


def test_errors_name_the_file(tmp_path, cube):
    with pytest.raises(DataNotFoundError, match=r"missing.ome.tif"):
        read_ome_tiff(tmp_path / "missing.ome.tif")
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, cube)
    with pytest.raises(FileFormatError, match=r"plain.tif.*no OME-XML"):
        read_ome_tiff(plain)
    junk = tmp_path / "junk.ome.tif"
    junk.write_bytes(b"not a tiff at all")
    with pytest.raises(FileFormatError, match=r"junk.ome.tif"):
        read_ome_tiff(junk)
    with pytest.raises(FileFormatError, match=r"junk.ome.tif.*unknown format"):
        open_image(junk)


def test_ome_xml_channel_round_trip():
    from hyperplex.bio.ome_tiff import channels_from_ome_xml, ome_channel_metadata

    cs = ChannelSet.from_names(["DAPI", "CD3", "PanCK"], colors=["#0000FF", "#00FF00", "#FF0000"])
    xml = (
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0"><Pixels ID="Pixels:0" '
        'DimensionOrder="XYCZT" Type="uint16" SizeX="4" SizeY="4" SizeC="3" SizeZ="1" SizeT="1">'
        + "".join(
            f'<Channel ID="Channel:0:{i}" Name="{n}" Color="{v}"/>'
            for i, (n, v) in enumerate(zip(cs.names, ome_channel_metadata(cs)["Channel"]["Color"]))
        )
        + "</Pixels></Image></OME>"
    )
    assert channels_from_ome_xml(xml, 3) == cs
    with pytest.raises(ChannelMismatchError):
        channels_from_ome_xml(xml, 4)
