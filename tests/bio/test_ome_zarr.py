import json

import numpy as np
import pytest
import zarr

from hyperplex.bio import open_image, read_ome_zarr, write_ome_zarr
from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import ChannelMismatchError, DataNotFoundError, FileFormatError, InvalidParameterError

NAMES = ["DAPI", "CD3", "CD8", "PanCK"]


@pytest.mark.parametrize(("version", "zarr_format"), [("0.5", 3), ("0.4", 2)])
def test_round_trip_both_ngff_versions(tmp_path, cube, version, zarr_format):
    chans = ChannelSet(tuple(NAMES), colors=("#0000FF", "#FF0000", "#00FF00", "#FFFF00"))
    path = write_ome_zarr(
        tmp_path / "img.ome.zarr", cube, chans, (0.5, 0.25), levels=3, chunks=64, ngff_version=version
    )
    img = read_ome_zarr(path)
    assert img.metadata["ngff_version"] == version and img.metadata["zarr_format"] == zarr_format
    assert img.channels == chans and img.pixel_size_um == (0.5, 0.25)
    assert [lvl.shape for lvl in img.levels] == [(4, 300, 260), (4, 150, 130), (4, 75, 65)]
    np.testing.assert_array_equal(img.levels[0].compute(), cube)
    assert img.levels[0].chunksize == (1, 64, 64)


def test_v05_metadata_follows_the_spec(tmp_path, cube):
    path = write_ome_zarr(tmp_path / "s.ome.zarr", cube, NAMES, 0.5, levels=2, chunks=64)
    meta = json.loads((path / "zarr.json").read_text())
    assert meta["zarr_format"] == 3 and meta["node_type"] == "group"
    ome = meta["attributes"]["ome"]
    assert ome["version"] == "0.5" and "version" not in ome["multiscales"][0]
    ms = ome["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["c", "y", "x"]
    assert [a["type"] for a in ms["axes"]] == ["channel", "space", "space"]
    assert ms["axes"][1]["unit"] == "micrometer"
    assert [d["coordinateTransformations"][0]["scale"] for d in ms["datasets"]] == [[1, 0.5, 0.5], [1, 1.0, 1.0]]
    assert [c["label"] for c in ome["omero"]["channels"]] == NAMES
    assert all(len(c["color"]) == 6 and c["window"]["end"] > c["window"]["start"] for c in ome["omero"]["channels"])
    arr = json.loads((path / "0" / "zarr.json").read_text())
    assert arr["dimension_names"] == ["c", "y", "x"]
    assert arr["chunk_grid"]["configuration"]["chunk_shape"] == [1, 64, 64]


def test_v04_metadata_follows_the_spec(tmp_path, cube):
    path = write_ome_zarr(tmp_path / "s.ome.zarr", cube, NAMES, 0.5, levels=2, chunks=64, ngff_version="0.4")
    attrs = json.loads((path / ".zattrs").read_text())
    assert attrs["multiscales"][0]["version"] == "0.4" and "ome" not in attrs
    assert json.loads((path / "0" / ".zarray").read_text())["dimension_separator"] == "/"
    assert (path / "0" / "0" / "0" / "0").is_file()


@pytest.mark.parametrize("version", ["0.5", "0.4"])
def test_independent_reader_ome_zarr_py_agrees(tmp_path, cube, version):
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    labels = {"cells": (cube[0] > 1200).astype(np.int32)}
    path = write_ome_zarr(tmp_path / "o.ome.zarr", cube, NAMES, 0.5, levels=2, chunks=64, ngff_version=version,
                          labels=labels)  # fmt: skip
    nodes = list(Reader(parse_url(str(path)))())
    image = nodes[0]
    assert [d.shape for d in image.data] == [(4, 300, 260), (4, 150, 130)]
    assert image.metadata["channel_names"] == NAMES
    np.testing.assert_array_equal(np.asarray(image.data[0]), cube)
    label_nodes = [n for n in nodes if n.metadata.get("name") == "cells"]
    assert label_nodes and np.array_equal(np.asarray(label_nodes[0].data[0]), labels["cells"])


def test_reads_ome_zarr_py_output(tmp_path, cube):
    from ome_zarr.writer import write_image

    root = zarr.open_group(tmp_path / "ext.ome.zarr", mode="w")
    transforms = [[{"type": "scale", "scale": [1, 0.3 * 2**i, 0.3 * 2**i]}] for i in range(5)]
    write_image(cube, root, axes="cyx", storage_options={"chunks": (1, 64, 64)}, coordinate_transformations=transforms)
    img = open_image(tmp_path / "ext.ome.zarr")
    assert img.format == "ome-zarr" and img.metadata["ngff_version"] == "0.5"
    assert img.shape == cube.shape and img.channels == ChannelSet.default(4)
    assert img.pixel_size_um is None  # ome-zarr-py wrote no unit, so the scale is not a length
    np.testing.assert_array_equal(img.levels[0].compute(), cube)


def test_reads_tczyx_and_selects_planes(tmp_path):
    data = np.arange(2 * 3 * 4 * 16 * 16, dtype=np.uint16).reshape(2, 3, 4, 16, 16)
    root = zarr.open_group(tmp_path / "t.zarr", mode="w", zarr_format=2)
    root.create_array("0", data=data)
    axes = [{"name": "t", "type": "time"}, {"name": "c", "type": "channel"}, {"name": "z", "type": "space"}]
    axes += [{"name": a, "type": "space", "unit": "nanometer"} for a in "yx"]
    ds = [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 1, 1, 250, 500]}]}]
    root.attrs["multiscales"] = [{"version": "0.4", "axes": axes, "datasets": ds}]
    with pytest.raises(FileFormatError, match=r"t.zarr.*select"):
        read_ome_zarr(tmp_path / "t.zarr")
    img = read_ome_zarr(tmp_path / "t.zarr", select={"t": 1, "z": 2})
    assert img.shape == (3, 16, 16) and img.pixel_size_um == (0.25, 0.5)
    np.testing.assert_array_equal(img.levels[0].compute(), data[1, :, 2])
    with pytest.raises(InvalidParameterError, match=r"out of range"):
        read_ome_zarr(tmp_path / "t.zarr", select={"t": 5, "z": 0})


def test_errors_name_the_store(tmp_path, cube):
    with pytest.raises(DataNotFoundError, match=r"nope.zarr"):
        read_ome_zarr(tmp_path / "nope.zarr")
    zarr.open_group(tmp_path / "plain.zarr", mode="w")
    with pytest.raises(FileFormatError, match=r"plain.zarr.*multiscales"):
        open_image(tmp_path / "plain.zarr")
    path = write_ome_zarr(tmp_path / "m.ome.zarr", cube, NAMES, levels=1, chunks=64)
    meta = json.loads((path / "zarr.json").read_text())
    meta["attributes"]["ome"]["omero"]["channels"].pop()
    (path / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(ChannelMismatchError, match=r"m.ome.zarr"):
        read_ome_zarr(path)
    with pytest.raises(InvalidParameterError, match=r"ngff_version"):
        write_ome_zarr(tmp_path / "v.ome.zarr", cube, ngff_version="0.3")


@pytest.mark.parametrize("version", ["0.5", "0.4"])
def test_output_validates_against_the_ngff_schema_models(tmp_path, cube, version):
    """ome-zarr-models (pydantic models of the NGFF spec) accept the image and its label groups."""
    models = pytest.importorskip(f"ome_zarr_models.v0{version[-1]}")
    from importlib import import_module

    image_cls = import_module(f"{models.__name__}.image").Image
    label_cls = import_module(f"{models.__name__}.image_label").ImageLabel
    labels = {"cells": (cube[0] > 1200).astype(np.int32)}
    path = write_ome_zarr(tmp_path / "v.ome.zarr", cube[:, :299, :259], NAMES, (0.5, 0.25), levels=3,
                          chunks=64, ngff_version=version, labels={"cells": labels["cells"][:299, :259]})  # fmt: skip
    image = image_cls.from_zarr(zarr.open_group(path, mode="r"))
    scales = [d.coordinateTransformations[0].scale for d in image.ome_attributes.multiscales[0].datasets]
    assert scales == [[1, 0.5, 0.25], [1, 1.0, 0.5], [1, 2.0, 1.0]]  # exact 2**k even though 299 -> 149 -> 74
    label_cls.from_zarr(zarr.open_group(path / "labels" / "cells", mode="r"))


def test_sharded_v05_round_trip(tmp_path, cube):
    path = write_ome_zarr(tmp_path / "sh.ome.zarr", cube, NAMES, 0.5, levels=2, chunks=32, shards=128)
    meta = json.loads((path / "0" / "zarr.json").read_text())
    codec = meta["codecs"][0]
    assert codec["name"] == "sharding_indexed" and codec["configuration"]["chunk_shape"] == [1, 32, 32]
    assert meta["chunk_grid"]["configuration"]["chunk_shape"] == [1, 128, 128]
    img = read_ome_zarr(path)
    np.testing.assert_array_equal(img.levels[0].compute(), cube)
    plain = read_ome_zarr(write_ome_zarr(tmp_path / "plain.ome.zarr", cube, NAMES, 0.5, levels=2, chunks=32))
    np.testing.assert_array_equal(img.levels[1].compute(), plain.levels[1].compute())
    assert len(list((path / "0" / "c").rglob("*"))) < len(list((tmp_path / "plain.ome.zarr" / "0" / "c").rglob("*")))
    with pytest.raises(InvalidParameterError, match="shards"):
        write_ome_zarr(tmp_path / "bad.ome.zarr", cube, shards=100, chunks=32)
    with pytest.raises(InvalidParameterError, match="shards"):
        write_ome_zarr(tmp_path / "bad.ome.zarr", cube, shards=64, chunks=32, ngff_version="0.4")


@pytest.mark.parametrize("version", ["0.5", "0.4"])
def test_label_images_round_trip(tmp_path, cube, version):
    from hyperplex.bio import read_ome_zarr_labels

    cells = (np.arange(300 * 260).reshape(300, 260) // 977).astype(np.int32)
    path = write_ome_zarr(tmp_path / "lab.ome.zarr", cube, NAMES, 0.5, levels=3, chunks=64, ngff_version=version,
                          labels={"cells": cells, "nuclei": cells * (cells % 2)})  # fmt: skip
    labels = read_ome_zarr_labels(path)
    assert list(labels) == ["cells", "nuclei"]
    assert [lvl.shape for lvl in labels["cells"]] == [(300, 260), (150, 130), (75, 65)]
    np.testing.assert_array_equal(labels["cells"][0].compute(), cells)
    np.testing.assert_array_equal(labels["cells"][2].compute(), cells[::4, ::4][:75, :65])  # nearest, never mixed ids
    assert read_ome_zarr_labels(write_ome_zarr(tmp_path / "none.ome.zarr", cube, levels=1)) == {}


def test_bioformats2raw_layout_opens_the_numbered_image(tmp_path, cube):
    root = zarr.open_group(tmp_path / "b2r.ome.zarr", mode="w", zarr_format=3)
    root.attrs["ome"] = {"version": "0.5", "bioformats2raw.layout": 3}
    write_ome_zarr(tmp_path / "b2r.ome.zarr" / "0", cube, NAMES, 0.5, levels=2, chunks=64)
    write_ome_zarr(tmp_path / "b2r.ome.zarr" / "1", cube[:2], NAMES[:2], 0.5, levels=1, chunks=64)
    first, second = open_image(tmp_path / "b2r.ome.zarr"), read_ome_zarr(tmp_path / "b2r.ome.zarr", image=1)
    assert list(first.channels) == NAMES and len(first.levels) == 2
    assert list(second.channels) == NAMES[:2]
    np.testing.assert_array_equal(second.levels[0].compute(), cube[:2])


def test_omero_channel_round_trip():
    from hyperplex.bio.ngff import channels_from_omero, omero_channels

    cs = ChannelSet.from_names(["DAPI", "CD3", "PanCK"], colors=["#0000FF", "#00FF00", "#FF0000"])
    assert channels_from_omero(omero_channels(cs)) == cs
    spectral = ChannelSet.from_wavelengths([450.0, 550.0])
    entries = omero_channels(spectral, windows=[(0, 1), (2, 3)])
    assert [e["color"] for e in entries] == ["0000FF", "00FF00"] and entries[1]["window"]["end"] == 3.0
    np.testing.assert_allclose(channels_from_omero(entries).wavelengths, spectral.wavelengths)
    assert omero_channels(ChannelSet.from_names(["only"]))[0]["color"] == "FFFFFF"
