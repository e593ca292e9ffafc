"""Whole-slide H&E -> multiplex prediction: streamed blending, resume, OME-Zarr, cell table, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import zarr
from click.testing import CliRunner

from hyperplex.bio.cells import hematoxylin_threshold, measure_cells, segment_nuclei
from hyperplex.bio.cli import bio
from hyperplex.bio.mif_stream import check_settings, stream_tiles
from hyperplex.common.errors import InvalidParameterError
from hyperplex.common.tiling import Stitcher, Tiler


@pytest.fixture(scope="module")
def slide(tmp_path_factory):
    """A small synthetic slide (H&E, truth labels) on disk, and a saved untrained-but-fixed MIPHEI file."""
    import torch

    from hyperplex.bio.synth import tissue, write_dataset
    from hyperplex.common.models import create_model

    folder = tmp_path_factory.mktemp("slide")
    sample = tissue(size=160, markers=2, seed=5)
    paths = write_dataset(sample, folder, tile=32)
    torch.manual_seed(0)
    model = create_model("miphei_test")
    model.save(folder / "model.safetensors")
    return sample, paths, folder / "model.safetensors"


def _run(args):
    result = CliRunner().invoke(bio, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


# ------------------------------------------------------------------ streaming
def _stream(work, data, tiler, fn, encode=lambda b: b, target=None):
    target = np.zeros(data.shape, np.float32) if target is None else target
    check_settings(work, {"case": 1})
    steps = stream_tiles(target, tiler, work, lambda w: data[:, w.slices[0], w.slices[1]], fn, encode, workers=2)
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return target, stop.value


@pytest.mark.parametrize(
    ("shape", "tile", "overlap"), [((3, 70, 90), 32, 8), ((2, 64, 50), 24, 5), ((1, 20, 20), 32, 4)]
)
def test_streamed_blend_equals_the_in_memory_stitcher(tmp_path, shape, tile, overlap):
    rng = np.random.default_rng(0)
    data = rng.normal(size=shape).astype(np.float32)
    tiler = Tiler(shape, tile, overlap)
    fn = lambda t: np.tanh(t) + t.mean()  # noqa: E731  (a tile-dependent map: blending matters)
    out, computed = _stream(tmp_path / "w", data, tiler, fn)
    stitcher = Stitcher(tiler, shape[0])
    for window in tiler:
        stitcher.add(window, fn(data[:, window.slices[0], window.slices[1]]))
    np.testing.assert_allclose(out, stitcher.result(), atol=1e-5)
    assert computed == len(tiler) and not any((tmp_path / "w" / "tiles").iterdir())  # stored tiles cleaned up


def test_an_interrupted_stream_resumes_without_redoing_tiles(tmp_path):
    data = np.random.default_rng(1).normal(size=(2, 100, 100)).astype(np.float32)
    tiler = Tiler(data.shape, 32, 8)
    calls = []

    def flaky(tile):
        calls.append(1)
        if len(calls) == 11:
            raise KeyboardInterrupt
        return tile * 2

    target = np.zeros(data.shape, np.float32)  # persists between the runs, like the work folder's Zarr array
    with pytest.raises(KeyboardInterrupt):
        _stream(tmp_path / "w", data, tiler, flaky, target=target)
    assert len(calls) == 11 and target[:, :48].any() and not target[:, 48:].any()  # two tile rows were final
    calls.clear()
    out, computed = _stream(tmp_path / "w", data, tiler, lambda t: (calls.append(1), t * 2)[1], target=target)
    assert computed == len(tiler) - 10 == len(calls)  # the 10 finished tiles are not predicted again
    np.testing.assert_allclose(out, data * 2, atol=1e-5)


def test_a_work_folder_with_other_settings_is_refused(tmp_path):
    check_settings(tmp_path / "w", {"tile": 64})
    with pytest.raises(InvalidParameterError, match="tile"):
        check_settings(tmp_path / "w", {"tile": 128})


# ------------------------------------------------------------------ cells
def test_nuclei_from_hematoxylin_find_the_synthetic_nuclei(slide):
    sample = slide[0]
    labels = segment_nuclei(sample.he, hematoxylin_threshold(sample.he), 0.5)
    found, truth = labels.max(), sample.count
    assert 0.6 * truth <= found <= 1.4 * truth
    hit = np.unique(sample.nuclei[labels > 0])
    assert (hit > 0).sum() >= 0.7 * truth  # most true nuclei overlap a found one


def test_measure_cells_keeps_cells_whose_centroid_is_in_the_core():
    labels = np.zeros((10, 10), int)
    labels[1:3, 1:3], labels[6:9, 6:9] = 4, 9
    markers = np.stack([labels * 1.0, np.ones((10, 10))])
    block = measure_cells(labels, markers, (100, 200), (slice(0, 5), slice(0, 5)))
    assert block.ids.tolist() == [4] and block.area.tolist() == [4]
    np.testing.assert_allclose(block.centroid, [[101.5, 201.5]])
    np.testing.assert_allclose(block.means, [[4.0, 1.0]])


# ------------------------------------------------------------------ the command
def test_predict_mif_writes_ome_zarr_and_cell_table(slide, tmp_path):
    from hyperplex.bio import open_image
    from hyperplex.common.models import load_model, predict_markers

    sample, paths, model_file = slide
    out = tmp_path / "PRED.ome.zarr"
    _run(["predict-mif", str(paths["he_tiff"]), "--out", str(out), "--model", str(model_file), "--tile", "64",
          "--overlap", "16", "--labels", str(paths["cells_labels"]), "--quiet"])  # fmt: skip
    image = open_image(out)
    model = load_model(model_file)
    assert image.channels.names == model.output_channels.names and image.channels.colors is not None
    assert image.pixel_size_um == (0.5, 0.5) and image.dtype == np.uint8 and image.shape == (4, 160, 160)
    assert zarr.open_group(out).attrs["ome"]["version"] == "0.5"
    pred = np.asarray(image.levels[0]).astype(np.float32) / 255
    whole, _ = predict_markers(model, sample.he, 64, 16, progress=lambda *_: None)  # the library's in-memory one
    assert np.abs(pred - np.clip((whole + 0.9) / 1.8, 0, 1)).mean() < 0.02
    table = pd.read_csv(tmp_path / "PRED.cells.csv")
    info = json.loads((tmp_path / "PRED.cells.json").read_text())
    assert sorted(table.cell_id) == list(range(1, sample.count + 1))  # given labels: one row per cell
    names = list(model.output_channels.names)
    expected = sample.cell_means(pred, subtract_background=False)
    np.testing.assert_allclose(table.sort_values("cell_id")[names].to_numpy(), expected, atol=2e-4)
    for name in names:
        clear = (table[name] - info["thresholds"][name]).abs() > 1e-4  # the CSV rounds means to 4 decimals
        calls = table[f"{name}_positive"].astype(bool)
        assert ((table[name] > info["thresholds"][name]) == calls)[clear].all() and 0 < calls.sum() < len(table)
    assert not (tmp_path / "PRED.ome.zarr.work").exists()


def test_predict_mif_segments_nuclei_without_labels(slide, tmp_path):
    sample, paths, model_file = slide
    out = tmp_path / "P.ome.zarr"
    _run(["predict-mif", str(paths["he_zarr"]), "--out", str(out), "--model", str(model_file), "--quiet"])
    table = pd.read_csv(tmp_path / "P.cells.csv")
    assert 0.6 * sample.count <= len(table) <= 1.4 * sample.count
    assert {"centroid_y_um", "area_px"} <= set(table.columns)


def test_predict_mif_refuses_untrained_presets_and_non_rgb(slide, tmp_path):
    _, paths, model_file = slide
    result = CliRunner().invoke(bio, ["predict-mif", str(paths["he_tiff"]), "--out", str(tmp_path / "a.ome.zarr"),
                                      "--model", "miphei_test"])  # fmt: skip
    assert result.exit_code != 0 and "no trained weights" in result.output
    result = CliRunner().invoke(bio, ["predict-mif", str(paths["multiplex_tiff"]), "--out",
                                      str(tmp_path / "b.ome.zarr"), "--model", str(model_file)])  # fmt: skip
    assert result.exit_code != 0 and "not an RGB H&E image" in result.output


def test_an_interrupted_prediction_resumes_and_matches_an_uninterrupted_one(slide, tmp_path, monkeypatch):
    from hyperplex.bio import open_image
    from hyperplex.bio.predict_mif import predict_mif
    from hyperplex.bio.predict_run import MifRun
    from hyperplex.common.models import load_model
    from hyperplex.common.progress import quiet

    sample, paths, model_file = slide
    model = load_model(model_file)
    with quiet():
        full = predict_mif(paths["he_tiff"], tmp_path / "full.ome.zarr", model=model, tile=64, overlap=16)
        original, calls = MifRun._predict, []

        def flaky(self, tile):
            calls.append(1)
            if len(calls) == 5:
                raise KeyboardInterrupt
            return original(self, tile)

        monkeypatch.setattr(MifRun, "_predict", flaky)
        with pytest.raises(KeyboardInterrupt):
            predict_mif(paths["he_tiff"], tmp_path / "cut.ome.zarr", model=model, tile=64, overlap=16)
        assert (tmp_path / "cut.ome.zarr.work" / "state.json").is_file() and not (tmp_path / "cut.ome.zarr").exists()
        monkeypatch.setattr(MifRun, "_predict", original)
        resumed = predict_mif(paths["he_tiff"], tmp_path / "cut.ome.zarr", model=model, tile=64, overlap=16)
    assert full.tiles_predicted == 9 and resumed.tiles_predicted == 9 - 4  # finished tiles are not redone
    a, b = (np.asarray(open_image(r.zarr).levels[0]) for r in (full, resumed))
    np.testing.assert_array_equal(a, b)
    assert resumed.cells == full.cells and resumed.thresholds == full.thresholds


def test_the_default_model_is_the_shipped_one_and_predicts_panck_from_he():
    """The shipped weights learned something: PanCK (tumour cells) from H&E on a held-out synthetic slide."""
    from hyperplex.bio.predict_mif import DEFAULT_MODEL, load_mif_model
    from hyperplex.bio.synth import tissue
    from hyperplex.common.models import predict_markers

    model = load_mif_model()
    assert model.preset == DEFAULT_MODEL and len(model.output_channels) == 16
    sample = tissue(size=256, markers=16, seed=4321)  # not a training seed (1..12)
    pred, channels = predict_markers(model, sample.he, 128, 32, progress=lambda *_: None)
    means = sample.cell_means(pred, subtract_background=False)
    j = list(channels.names).index("PanCK")
    truth = sample.expression[:, list(sample.channels.names).index("PanCK")]
    assert np.corrcoef(means[:, j], truth)[0, 1] > 0.5
