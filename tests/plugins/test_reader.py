"""The npe2 reader: round trips per format, and `get_reader` returning None (never raising) on junk."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from hyperplex.common.arrays import materialize
from hyperplex.plugins._formats import sniff_format
from hyperplex.plugins._reader import get_reader


def _read(path):
    reader = get_reader(str(path))
    assert reader is not None, f"get_reader refused {path}"
    return reader(str(path))


def _level0(data):
    return data[0] if isinstance(data, list) else data


def _split(layer_tuple):
    """Emulate napari's channel_axis split: (data, kwargs) -> per-channel level-0 arrays."""
    data, kwargs, kind = layer_tuple
    assert kind == "image"
    return materialize(_level0(data)), kwargs


@pytest.mark.parametrize("writer", ["ome_tiff", "ome_zarr", "ome_zarr_04"])
def test_microscopy_round_trip(tmp_path, marker_image, writer):
    from hyperplex import bio

    image, channels = marker_image
    path = tmp_path / ("img.ome.tif" if writer == "ome_tiff" else "img.ome.zarr")
    if writer == "ome_tiff":
        bio.write_ome_tiff(path, image, channels, pixel_size_um=0.65, levels=2, tile=32)
    else:
        bio.write_ome_zarr(path, image, channels, pixel_size_um=0.65, levels=2, chunks=32,
                           ngff_version="0.4" if writer == "ome_zarr_04" else "0.5")  # fmt: skip
    (layer,) = _read(path)
    data, kwargs = _split(layer)
    np.testing.assert_array_equal(data, image)
    assert kwargs["channel_axis"] == 0
    assert kwargs["name"] == list(channels.names)
    assert kwargs["multiscale"] is True and len(layer[0]) == 2
    assert kwargs["scale"] == pytest.approx((0.65, 0.65))
    meta = kwargs["metadata"][2]["hyperplex"]
    assert meta["index"] == 2 and meta["channels"]["names"] == list(channels.names)
    assert all(lo < hi for lo, hi in kwargs["contrast_limits"])


def test_plain_tiff_stack_round_trip(tmp_path, marker_image):
    image, _ = marker_image
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, image, photometric="minisblack")
    (layer,) = _read(path)
    data, kwargs = _split(layer)
    np.testing.assert_array_equal(data, image)
    assert len(kwargs["name"]) == 4


def test_reader_layers_open_in_viewer_model(tmp_path, marker_image):
    """The tuples are valid napari input: a ViewerModel (no Qt) makes one named layer per channel."""
    from napari.components import ViewerModel

    from hyperplex import bio

    image, channels = marker_image
    path = tmp_path / "img.ome.tif"
    bio.write_ome_tiff(path, image, channels, pixel_size_um=0.5, levels=2, tile=32)
    viewer = ViewerModel()
    for data, kwargs, kind in _read(path):
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    assert [layer.name for layer in viewer.layers] == list(channels.names)
    assert all(layer.multiscale for layer in viewer.layers)
    np.testing.assert_array_equal(np.asarray(viewer.layers["CD20"].data[0]), image[2])


def _junk_paths(tmp_path):
    rng = np.random.default_rng(1)
    paths = {}
    paths["random.tif"] = rng.bytes(4096)
    paths["truncated.tif"] = b"II*\x00" + rng.bytes(20)
    paths["empty.tif"] = b""
    paths["text.nc"] = b"not a netcdf file\n"
    paths["fake.hdr"] = b"not an envi header\n"
    paths["random.zarr.bin"] = rng.bytes(100)
    paths["hdf5.nc"] = b"\x89HDF\r\n\x1a\n" + rng.bytes(200)
    out = []
    for name, content in paths.items():
        (tmp_path / name).write_bytes(content)
        out.append(str(tmp_path / name))
    bad_zarr = tmp_path / "bad.zarr"
    bad_zarr.mkdir()
    (bad_zarr / "zarr.json").write_text("{not json")
    import zarr

    zarr.create_array(str(tmp_path / "plain.zarr"), shape=(4, 4), dtype="f4")  # a zarr array, not OME-Zarr
    zarr.open_group(str(tmp_path / "group.zarr"), mode="w", zarr_format=2)  # a v2 group without multiscales
    empty_dir = tmp_path / "empty_dir"
    empty_dir.mkdir()
    extra = [str(tmp_path / name) for name in ("plain.zarr", "group.zarr", "empty_dir", "missing.ome.tif")]
    return [*out, str(bad_zarr), *extra]


def test_get_reader_returns_none_for_junk(tmp_path):
    for path in _junk_paths(tmp_path):
        assert get_reader(path) is None, path
        assert sniff_format(path) is None, path


@pytest.mark.parametrize("arg", [None, 3, [], ["a.tif", "b.tif"], b"bytes", object()])
def test_get_reader_never_raises_on_odd_arguments(arg):
    assert get_reader(arg) is None


# ---------------------------------------------------------------- hyperspectral formats (hyperplex.geo)
def _spectral_cube(bands=6):
    from hyperplex.common.channels import ChannelSet

    rng = np.random.default_rng(2)
    cube = rng.random((bands, 20, 24)).astype(np.float32) * 10
    return cube, ChannelSet.from_wavelengths(np.linspace(1000.0, 2400.0, bands), np.full(bands, 8.0))


def test_emit_netcdf_round_trip(tmp_path):
    from hyperplex.geo.synth import emit_scene, write_emit_scene

    scene = emit_scene(lines=48, samples=40, plumes=1, plume_size=2.0, seed=1)
    path = write_emit_scene(scene, tmp_path)["radiance"]
    (layer,) = _read(path)
    data, kwargs = _split(layer)
    np.testing.assert_allclose(data, np.moveaxis(scene.radiance, -1, 0))
    assert kwargs["axis_labels"] == ("band", "y", "x")  # 285 bands: one layer with a band slider
    side = np.sqrt(scene.pixel_area_m2)  # nominal ground pixel of the swath, from spatialResolution
    assert kwargs["scale"] == pytest.approx((1.0, side, side), rel=1e-3) and kwargs["units"][-1] == "meter"
    channels = kwargs["metadata"]["hyperplex"]["channels"]
    np.testing.assert_allclose(channels["wavelengths"], scene.wavelengths, rtol=1e-6)
    np.testing.assert_allclose(channels["fwhm"], scene.fwhm, rtol=1e-6)
    truth = write_emit_scene(scene, tmp_path / "t")["truth"]
    assert get_reader(str(truth)) is None  # a 2-D truth file is not a cube


def test_envi_round_trip(tmp_path):
    import spectral.io.envi as envi

    cube, channels = _spectral_cube()
    header = tmp_path / "scene.hdr"
    meta = {"wavelength": list(channels.wavelengths), "fwhm": list(channels.fwhm), "wavelength units": "nm"}
    envi.save_image(str(header), np.moveaxis(cube, 0, -1), metadata=meta, interleave="bil", ext=".img")
    for path in (header, tmp_path / "scene.img"):
        (layer,) = _read(path)
        data, kwargs = _split(layer)
        np.testing.assert_allclose(data, cube)
        assert kwargs["name"] == list(channels.names)  # few bands: one layer per band, named by wavelength
        assert kwargs["name"][0] == "1000.0 nm"


def test_geotiff_round_trip(tmp_path):
    from rasterio.transform import from_origin

    from hyperplex.geo.io import write_geotiff_cube

    cube, channels = _spectral_cube()
    path = tmp_path / "cube.tif"
    write_geotiff_cube(cube, channels, path, crs="EPSG:32613", transform=from_origin(500000, 3600000, 30, 30))
    assert sniff_format(path) == "geotiff"
    (layer,) = _read(path)
    data, kwargs = _split(layer)
    np.testing.assert_allclose(data, cube)
    assert kwargs["name"] == list(channels.names)
    assert kwargs["scale"] == (30.0, 30.0) and kwargs["units"] == ("meter", "meter")
    np.testing.assert_allclose(kwargs["metadata"][0]["hyperplex"]["channels"]["wavelengths"], channels.wavelengths)


# ---------------------------------------------------------------- the format registry
def _write_png(path, rgb):
    from PIL import Image

    Image.fromarray(rgb).save(path)


def _one_sample_per_format(tmp_path, marker_image):
    """A small file of every registered format, written by hyperplex's own writers (name -> path)."""
    import spectral.io.envi as envi
    from rasterio.transform import from_origin

    from hyperplex import bio
    from hyperplex.geo.io import envi_header_fields, write_geotiff_cube
    from hyperplex.geo.synth import emit_scene, write_emit_scene

    image, channels = marker_image
    cube, spectral = _spectral_cube()
    samples = {
        "ome-tiff": bio.write_ome_tiff(tmp_path / "img.ome.tif", image, channels, levels=1, tile=32),
        "ome-zarr": bio.write_ome_zarr(tmp_path / "img.ome.zarr", image, channels, levels=1, chunks=32),
        "tiff-stack": tmp_path / "stack.tif",
        "geotiff": write_geotiff_cube(
            cube, spectral, tmp_path / "cube.tif", crs="EPSG:32613", transform=from_origin(500000, 3600000, 30, 30)
        ),
        "envi": tmp_path / "scene.img",
    }
    tifffile.imwrite(samples["tiff-stack"], image, photometric="minisblack")
    samples["png-jpeg"] = tmp_path / "snap.png"
    _write_png(samples["png-jpeg"], np.zeros((12, 10, 3), np.uint8))
    envi.save_image(str(tmp_path / "scene.hdr"), np.moveaxis(cube, 0, -1), metadata=envi_header_fields(spectral),
                    interleave="bil", ext=".img")  # fmt: skip
    scene = emit_scene(lines=24, samples=20, plumes=0, seed=1)
    samples["emit"] = write_emit_scene(scene, tmp_path / "emit")["radiance"]
    return samples


def test_every_registered_format_is_claimed_by_its_own_sniffer_only(tmp_path, marker_image):
    from hyperplex.plugins._formats import FORMATS

    samples = _one_sample_per_format(tmp_path, marker_image)
    assert set(samples) == set(FORMATS.names())  # a new format needs a sample here
    counts = {"emit": 285, "envi": 6, "geotiff": 6, "png-jpeg": 3}  # bands; other microscopy samples: 4 markers
    for name, path in samples.items():
        assert [f.name for f in FORMATS.claimants(path)] == [name], path
        image = FORMATS[name].open_image(path)  # what the sniffer claims, the reader opens
        assert image.format == name and image.shape[0] == counts.get(name, 4)
    assert FORMATS.names("hyperspectral") == ["emit", "envi", "geotiff"]
    assert FORMATS.names("microscopy") == ["ome-tiff", "ome-zarr", "tiff-stack", "png-jpeg"]


def test_napari_reader_open_cube_and_open_image_go_through_one_registry(tmp_path, marker_image):
    """A format registered once is found by all three entry points; unregistered, by none."""
    from hyperplex.bio import open_image
    from hyperplex.common.channels import ChannelSet
    from hyperplex.common.errors import FileFormatError
    from hyperplex.common.formats import FORMATS, Format, read_head
    from hyperplex.common.image import MultiscaleImage
    from hyperplex.geo.io import open_cube

    cube, channels = _spectral_cube()
    path = tmp_path / "cube.npy"
    np.save(path, cube)
    opened = []

    def open_npy(p, **kwargs):
        import xarray as xr

        opened.append(str(p))
        return xr.DataArray(np.load(p), dims=("band", "y", "x"), coords=channels.to_xarray_coords("band"))

    def npy_image(p, **kwargs):
        opened.append(str(p))
        return MultiscaleImage([np.load(p)], ChannelSet.default(np.load(p).shape[0]), path=p, format="npy")

    npy = Format("npy", "hyperspectral", lambda p: read_head(p, 6) == b"\x93NUMPY", open_npy, npy_image, "a .npy")
    assert get_reader(str(path)) is None
    FORMATS.register(npy)
    try:
        assert ChannelSet.from_xarray(open_cube(path)) == channels
        (layer,) = _read(path)
        np.testing.assert_array_equal(_split(layer)[0], cube)
        with pytest.raises(FileFormatError, match="a .npy \\(hyperspectral data\\)"):
            open_image(path)  # a microscopy reader names the format that does claim it
        assert opened == [str(path), str(path)]
    finally:
        FORMATS.unregister("npy")
    assert get_reader(str(path)) is None


def test_a_claimed_file_the_reader_cannot_open_is_refused_not_raised(tmp_path):
    """scikit-image's multipage_rgb.tif (axes QSYX) is a TIFF stack by its header but not a 2-D image."""
    data = np.zeros((2, 10, 10, 3), np.uint8)
    path = tmp_path / "multipage_rgb.tif"
    tifffile.imwrite(path, data, photometric="rgb")
    assert sniff_format(path) == "tiff-stack"
    assert get_reader(str(path)) is None


def test_napari_path_parses_an_ome_tiff_once(tmp_path, marker_image, monkeypatch):
    """get_reader + the reader function + contrast limits: one TiffFile; the sniffer reads header bytes only."""
    import builtins

    from hyperplex import bio

    image, channels = marker_image
    path = bio.write_ome_tiff(tmp_path / "once.ome.tif", image, channels, levels=2, tile=32)
    parsed, raw = [], []
    real_init, real_open = tifffile.TiffFile.__init__, builtins.open

    def counting_init(self, arg, *args, **kwargs):
        parsed.append(str(arg))
        real_init(self, arg, *args, **kwargs)

    def counting_open(file, *args, **kwargs):
        if str(file) == str(path):
            raw.append(args[0] if args else kwargs.get("mode", "r"))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(tifffile.TiffFile, "__init__", counting_init)
    monkeypatch.setattr(builtins, "open", counting_open)
    (layer,) = _read(path)
    np.testing.assert_array_equal(_split(layer)[0], image)
    assert parsed == [str(path)]  # one TiffFile, no re-open for the levels or the contrast preview
    # the sniffers' header reads (a few bytes each) and tifffile's one handle; 3 seen in some test orders
    assert 2 <= len(raw) <= 3
