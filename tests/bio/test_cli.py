import json

import numpy as np
import pandas as pd
from click.testing import CliRunner

from hyperplex.bio import open_image
from hyperplex.common.cli import main


def test_synth_microscopy_writes_images_labels_and_truth(tmp_path):
    out = tmp_path / "tissue"
    args = ["synth", "microscopy", "--out", str(out), "--size", "160", "--markers", "5", "--seed", "2", "--quiet"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert result.output == ""  # --quiet
    truth = json.loads((out / "truth.json").read_text())
    names = truth["channels"]["names"]
    assert names == ["DAPI", "CD3", "CD8", "CD20", "PanCK"] and truth["params"]["seed"] == 2
    table = pd.read_csv(out / "cells.csv")
    assert len(table) == truth["cell_count"] and list(table.columns[-5:]) == names

    tif, zarr_img = open_image(out / "multiplex.ome.tif"), open_image(out / "multiplex.ome.zarr")
    assert list(tif.channels) == names == list(zarr_img.channels)
    assert tif.pixel_size_um == (0.5, 0.5) == zarr_img.pixel_size_um
    image = tif.levels[0].compute()
    np.testing.assert_array_equal(image, zarr_img.levels[0].compute())
    he = open_image(out / "he.ome.tif")
    assert list(he.channels) == ["R", "G", "B"] and he.dtype == np.uint8 and he.shape == (3, 160, 160)

    cells = open_image(out / "labels" / "cells.ome.tif").levels[0].compute()[0].astype(np.int64)
    zarr_cells = np.asarray(__import__("zarr").open_group(out / "multiplex.ome.zarr", mode="r")["labels/cells/0"])
    np.testing.assert_array_equal(cells, zarr_cells)
    # the written table is the truth of the written image: cell means of DAPI over the written mask
    area = np.bincount(cells.ravel())[1:]
    dapi = np.bincount(cells.ravel(), image[0].ravel().astype(float))[1:] / area - truth["background"][0]
    assert np.corrcoef(dapi, table["DAPI"])[0, 1] > 0.97


def test_synth_microscopy_reports_and_validates(tmp_path):
    result = CliRunner().invoke(main, ["synth", "microscopy", "--out", str(tmp_path / "t"), "--size", "64",
                                       "--markers", "2", "--cells", "10"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "cells, 2 markers, 64x64 px" in result.output
    bad = CliRunner().invoke(main, ["synth", "microscopy", "--out", str(tmp_path / "u"), "--markers", "61"])
    assert bad.exit_code != 0 and "61" in bad.output
