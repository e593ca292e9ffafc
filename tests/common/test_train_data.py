"""Tile store, dataset, scene tiling, config and pickle-free checkpoint format of hyperplex.common.train."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hyperplex.bio.synth import CELL_TYPES, tissue
from hyperplex.common.errors import DataNotFoundError, FileFormatError, InvalidParameterError
from hyperplex.common.train import (
    TileDataset,
    TileStore,
    load_config,
    object_class_map,
    scene_tiles,
    write_tiles,
)
from hyperplex.common.train.checkpoint import flatten_optimizer, unflatten_optimizer
from hyperplex.common.train.optim import lr_at
from hyperplex.common.train.precision import Precision
from hyperplex.common.train.sampler import EpochBatches

CLASSES = ["background", *CELL_TYPES]
NAMES = ["m0", "m1", "m2", "m3", "m4"]


@pytest.fixture(scope="module")
def tissue_tiles(tmp_path_factory):
    t = tissue(size=96, markers=5, seed=1, he=False)
    class_map = object_class_map(t.cells, t.cell_types, CLASSES)
    tiles = scene_tiles(t.image, 32, class_map=class_map)
    path = tmp_path_factory.mktemp("store") / "tiles.zarr"
    write_tiles(path, tiles["image"], t.channels, label=tiles["label"], mask=tiles["mask"], label_classes=CLASSES,
                mask_classes=CLASSES, meta={"source": "bio.synth.tissue", "seed": 1})  # fmt: skip
    return t, class_map, tiles, path


def test_scene_tiles_cut_the_grid_and_label_by_dominant_class():
    image = np.arange(2 * 64 * 64).reshape(2, 64, 64)
    class_map = np.zeros((64, 64), np.uint8)
    class_map[:32, :32] = 2  # tile 0: all class 2
    class_map[:10, 32:] = 1  # tile 1: class 1 on 10 rows, rest background (0 never wins)
    class_map[32:, :] = 3
    class_map[40:, 40:] = 1  # tile 3: class 1 on 24x24 = 576 px > class 3
    tiles = scene_tiles(image, 32, class_map=class_map)
    assert tiles["image"].shape == (4, 2, 32, 32)
    np.testing.assert_array_equal(tiles["image"][3], image[:, 32:, 32:])
    np.testing.assert_array_equal(tiles["origin"], [[0, 0], [0, 32], [32, 0], [32, 32]])
    np.testing.assert_array_equal(tiles["label"], [2, 1, 3, 1])
    assert scene_tiles(image, 32, stride=16)["image"].shape[0] == 9


def test_object_class_map_maps_cells_to_their_type(tissue_tiles):
    t, class_map, _, _ = tissue_tiles
    k = 5
    assert np.all(class_map[t.cells == k] == CLASSES.index(t.cell_types[k - 1]))
    assert np.all(class_map[t.cells == 0] == 0)
    with pytest.raises(InvalidParameterError, match="not in `classes`"):
        object_class_map(t.cells, t.cell_types, ["background", "tumor"])


def test_store_round_trip_and_statistics(tissue_tiles):
    t, _, tiles, path = tissue_tiles
    store = TileStore.open(path)
    assert store.count == len(tiles["image"]) == 9
    assert store.tile_shape == (5, 32, 32)
    assert store.channels == t.channels
    assert store.classes("label") == CLASSES and store.attrs["meta"]["seed"] == 1
    assert store.array("image").chunks == (1, 5, 32, 32)  # one tile per chunk: lazy per-sample reads
    mean = tiles["image"].astype(np.float64).mean(axis=(0, 2, 3))
    np.testing.assert_allclose(store.attrs["image_mean"], mean, rtol=1e-10)
    np.testing.assert_allclose(store.attrs["image_std"], tiles["image"].std(axis=(0, 2, 3)), rtol=1e-8)


def test_dataset_reads_and_standardises(tissue_tiles):
    _, _, tiles, path = tissue_tiles
    ds = TileDataset(path, fields=("label", "mask"))
    sample = ds[4]
    assert sample["image"].dtype == torch.float32 and sample["label"].item() == tiles["label"][4]
    np.testing.assert_array_equal(sample["mask"].numpy(), tiles["mask"][4])
    stacked = torch.stack([ds[i]["image"] for i in range(len(ds))])
    torch.testing.assert_close(stacked.mean(dim=(0, 2, 3)), torch.zeros(5), atol=1e-5, rtol=0)
    torch.testing.assert_close(stacked.std(dim=(0, 2, 3), unbiased=False), torch.ones(5), atol=1e-4, rtol=0)
    raw = TileDataset(path, normalize=False, indices=[2])
    np.testing.assert_array_equal(raw[0]["image"].numpy(), tiles["image"][2])
    assert pickle_free_state(ds)["_arrays"] is None


def pickle_free_state(ds):
    ds[0]  # opens the arrays
    return ds.__getstate__()  # what a DataLoader worker receives: no open handles


def test_store_errors_name_the_problem(tissue_tiles, tmp_path):
    _, _, tiles, path = tissue_tiles
    with pytest.raises(InvalidParameterError, match="label_classes"):
        write_tiles(tmp_path / "a.zarr", tiles["image"], NAMES, label=tiles["label"])
    with pytest.raises(InvalidParameterError, match="indices must be in 0..1"):
        write_tiles(tmp_path / "b.zarr", tiles["image"], NAMES, label=tiles["label"], label_classes=["a", "b"])
    with pytest.raises(InvalidParameterError, match="shape"):
        write_tiles(tmp_path / "c.zarr", tiles["image"], NAMES, mask=tiles["mask"][:, :8], mask_classes=CLASSES)
    with pytest.raises(DataNotFoundError):
        TileStore.open(tmp_path / "missing.zarr")
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(FileFormatError, match="tile store"):
        TileStore.open(tmp_path / "empty.zarr")
    with pytest.raises(FileFormatError, match="target"):
        TileDataset(path, fields=("target",))


def test_epoch_batches_split_one_global_batch_over_ranks():
    single = list(EpochBatches(10, 4, seed=3, epoch=1))
    ranks = [list(EpochBatches(10, 2, seed=3, epoch=1, rank=r, world_size=2)) for r in range(2)]
    assert len(single) == 2 and all(len(b) == 4 for b in single)
    assert [ranks[0][s] + ranks[1][s] for s in range(2)] == single
    assert list(EpochBatches(10, 4, seed=3, epoch=1, start=1)) == single[1:]
    assert list(EpochBatches(10, 4, seed=3, epoch=2)) != single


def test_config_file_and_options(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model: chadavit_test\ndata: tiles.zarr\ntask: segment\nlr: 0.01\nmodel_args: {depth: 1}\n")
    cfg = load_config(path, lr=0.5, epochs=None)
    assert (cfg.task, cfg.lr, cfg.epochs, cfg.model_args) == ("segment", 0.5, 1, {"depth": 1})
    (tmp_path / "run.json").write_text(json.dumps(cfg.to_dict()))
    assert load_config(tmp_path / "run.json") == cfg
    with pytest.raises(InvalidParameterError, match="Unknown training options"):
        load_config(path, learning_rate=1.0)
    with pytest.raises(InvalidParameterError, match="task"):
        load_config(path, task="detect")


def test_optimizer_state_round_trips_without_pickle():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    tensors, meta = flatten_optimizer(opt.state_dict())
    meta = json.loads(json.dumps(meta))  # JSON is all that is stored besides tensors
    restored = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters(), lr=1.0)
    restored.load_state_dict(unflatten_optimizer(tensors, meta))
    a, b = opt.state_dict(), restored.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for k in a["state"]:
        for name in a["state"][k]:
            torch.testing.assert_close(a["state"][k][name], b["state"][k][name], rtol=0, atol=0)


def test_schedule_and_cpu_precision():
    assert lr_at(0, 10, 1.0, 0.0, warmup=2) == 0.5
    assert lr_at(2, 10, 1.0, 0.0, warmup=2) == 1.0
    assert lr_at(10, 10, 1.0, 0.1, warmup=2) == pytest.approx(0.1)
    cpu = torch.device("cpu")
    assert Precision.choose("auto", cpu).name == "fp32"
    bf16 = Precision.choose("bf16", cpu)
    with bf16.autocast():
        assert torch.nn.Linear(4, 4)(torch.randn(2, 4)).dtype == torch.bfloat16
