"""hyperplex.common.train: every family trains a few steps; seeds, resume, HCS, exports and metrics."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from hyperplex.bio.synth import CELL_TYPES, tissue
from hyperplex.common.models import LESSViT, load_model
from hyperplex.common.models.hcs import HierarchicalChannelSampler
from hyperplex.common.train import load_task_model, object_class_map, scene_tiles, train, write_tiles
from hyperplex.common.train.metrics import MetricsLog

CLASSES = ["background", *CELL_TYPES]
WAVELENGTHS = [450.0, 550.0, 650.0, 850.0, 1600.0, 2200.0]
TINY_DINO = {"out_dim": 32, "hidden_dim": 32, "bottleneck_dim": 8, "local_crops": 1}


@pytest.fixture(scope="module")
def markers(tmp_path_factory):
    """9 tiles of 32 px, 5 markers, cell-type labels and masks from the synthetic tissue."""
    t = tissue(size=96, markers=5, seed=0, he=False)
    tiles = scene_tiles(t.image, 32, class_map=object_class_map(t.cells, t.cell_types, CLASSES))
    path = tmp_path_factory.mktemp("markers") / "tiles.zarr"
    return write_tiles(path, tiles["image"], t.channels, label=tiles["label"], mask=tiles["mask"],
                       label_classes=CLASSES, mask_classes=CLASSES)  # fmt: skip


@pytest.fixture(scope="module")
def spectral(tmp_path_factory):
    """8 tiles of 32 px, 6 bands with wavelengths; labels, masks and a 4-channel target derived from the bands."""
    rng = np.random.default_rng(0)
    image = rng.normal(size=(8, 6, 32, 32)).astype(np.float32)
    mask = (image[:, 0] > image[:, 1]).astype(np.uint8)
    target = np.tanh(image[:, :4] - image[:, 4:5])
    path = tmp_path_factory.mktemp("spectral") / "tiles.zarr"
    return write_tiles(path, image, WAVELENGTHS, label=mask.mean(axis=(1, 2)).round().astype(int), mask=mask,
                       label_classes=["low", "high"], mask_classes=["a", "b"], target=target,
                       target_channels=["Hoechst", "CD3e", "Pan-CK", "SMA"])  # fmt: skip


def _run(data, tmp_path, name="run", **options):
    defaults = dict(batch_size=4, max_steps=2, log_every=1, quiet=True, dino=TINY_DINO)
    return train(data=str(data), out=str(tmp_path / name), **{**defaults, **options})


def _weights(result):
    return {k: v.clone() for k, v in result.objective.state_dict().items()}


@pytest.mark.parametrize(
    ("model", "task", "store"),
    [
        ("chadavit_test", "classify", "markers"),
        ("channelvit_test", "segment", "markers"),
        ("lessvit_test", "regress", "spectral"),
        ("hypersegformer_test", "segment", "spectral"),
        ("miphei_test", "regress", "spectral"),
    ],
)
def test_supervised_training_exports_a_reloadable_model(model, task, store, request, tmp_path):
    data = request.getfixturevalue(store)
    result = _run(data, tmp_path, model=model, task=task)
    assert result.step == 2 and np.isfinite(result.metrics["loss"])
    reloaded = load_task_model(tmp_path / "run")
    channels = result.objective.net.model.trained_channels
    x = torch.randn(2, len(channels), 32, 32)
    net = result.objective.net.eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x, channels), net(x, channels))
    rows = MetricsLog.read(tmp_path / "run" / "metrics.csv")
    assert {r["step"] for r in rows} == {"1", "2"} and "loss" in {r["metric"] for r in rows}


def test_hyper_mae_pretrains_lessvit_and_exports_the_encoder(spectral, tmp_path):
    result = _run(spectral, tmp_path, model="lessvit_hypermae_test", task="mae")
    assert {"loss", "pos_loss", "channel_loss"} <= set(result.metrics)
    assert result.metrics["loss"] == pytest.approx(
        result.metrics["pos_loss"] + result.metrics["channel_loss"], rel=1e-5
    )
    encoder = load_model(tmp_path / "run" / "encoder.safetensors")
    assert isinstance(encoder, LESSViT)
    np.testing.assert_allclose(encoder.trained_channels.wavelengths, WAVELENGTHS)
    trained = result.objective.net.model.encoder.state_dict()
    for key, value in encoder.state_dict().items():
        torch.testing.assert_close(value, trained[key])


def test_dino_pretrains_chadavit_with_an_ema_teacher(markers, tmp_path):
    result = _run(markers, tmp_path, model="chadavit_test", task="dino", max_steps=3)
    dino = result.objective
    assert dino.per_sample_discard  # ChAda-ViT takes a channel mask: ChAda's per-image channel discard
    assert 0.0 < result.metrics["teacher_entropy"] <= np.log(TINY_DINO["out_dim"]) + 1e-4
    student, teacher = dino.student.state_dict(), dino.teacher.state_dict()
    assert any(not torch.equal(student[k], teacher[k]) for k in student)  # EMA lags the student
    exported = load_model(tmp_path / "run" / "model.safetensors")
    for key, value in exported.state_dict().items():
        torch.testing.assert_close(value, teacher["model." + key])
    assert float(dino.center.abs().sum()) > 0


def test_same_seed_same_weights_other_seed_other_weights(markers, tmp_path):
    options = dict(model="channelvit_test", task="classify", model_args={"drop_rate": 0.1})  # HCS + dropout: RNG
    a, b = _run(markers, tmp_path, "a", **options), _run(markers, tmp_path, "b", **options)
    c = _run(markers, tmp_path, "c", seed=1, **options)
    assert a.digests == b.digests and a.digests != c.digests


@pytest.mark.parametrize(
    ("model", "task", "extra"),
    [("channelvit_test", "classify", {"model_args": {"drop_rate": 0.1}}), ("chadavit_test", "dino", {})],
)
def test_resume_after_interruption_gives_the_uninterrupted_weights(markers, tmp_path, model, task, extra):
    options = dict(model=model, task=task, batch_size=2, max_steps=4, **extra)  # 4 steps/epoch: stop mid-epoch
    whole = _weights(_run(markers, tmp_path, "whole", **options))
    first = _run(markers, tmp_path, "parts", stop_after=2, **options)
    assert first.step == 2
    resumed = _run(markers, tmp_path, "parts", resume=True, **options)
    assert resumed.step == 4
    for key, value in _weights(resumed).items():
        torch.testing.assert_close(value, whole[key], rtol=0, atol=1e-6, msg=key)
    rows = MetricsLog.read(tmp_path / "parts" / "metrics.csv")
    assert [r["step"] for r in rows if r["metric"] == "loss"] == ["1", "2", "3", "4"]


def test_hcs_samples_channels_per_batch(markers, tmp_path, monkeypatch):
    drawn = []
    original = HierarchicalChannelSampler.forward

    def spy(self, num_channels):
        keep = original(self, num_channels)
        if self.training:  # eval-mode calls (the trainer's shape probes) keep every channel
            drawn.append(len(keep))
        return keep

    monkeypatch.setattr(HierarchicalChannelSampler, "forward", spy)
    _run(markers, tmp_path, "internal", model="channelvit_test", max_steps=3)  # ChannelViT samples itself
    assert len(drawn) == 3 and all(1 <= n <= 5 for n in drawn)
    drawn.clear()
    _run(markers, tmp_path, "off", model="chadavit_test", max_steps=2)
    assert drawn == []
    trainer_hcs = _run(markers, tmp_path, "trainer", model="chadavit_test", max_steps=2, hcs=True)
    assert len(drawn) == 2 and trainer_hcs.step == 2


def test_a_tiny_model_learns_the_cell_types(markers, tmp_path):
    # full-batch steps (all 9 tiles): the training loss must fall steadily and clearly
    _run(markers, tmp_path, model="channelvit_test", hcs=False, batch_size=9, max_steps=24, lr=3e-3, log_every=4)
    losses = [float(r["value"]) for r in MetricsLog.read(tmp_path / "run" / "metrics.csv") if r["metric"] == "loss"]
    assert len(losses) == 6 and all(b < a for a, b in itertools.pairwise(losses)), losses
    assert losses[-1] < 0.8 * losses[0], losses
