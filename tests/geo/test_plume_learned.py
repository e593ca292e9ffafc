"""Learned plume segmentation: input features, training tiles, losses, the shipped weights' command, the method."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from hyperplex.common.cli.train import train as train_command
from hyperplex.common.errors import ChannelMismatchError, InvalidParameterError
from hyperplex.common.models import load_model, preset_info
from hyperplex.common.train import TileStore
from hyperplex.common.train.objectives import segment_loss
from hyperplex.geo.cli import synth_methane_tiles
from hyperplex.geo.methane import target_spectrum
from hyperplex.geo.methane.learned import learned_segmentation
from hyperplex.geo.methane.plume_features import plume_features, window_bands
from hyperplex.geo.methane.plume_tiles import MASK_IGNORE, TileRecipe, methane_tiles, scene_settings
from hyperplex.geo.synth import emit_scene
from hyperplex.geo.synth.spectra import emit_band_grid

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "train_plume_models.sh"
PRESETS = ("hypersegformer_plume", "hyperefficientvit_plume")
TINY = TileRecipe(scenes=2, seed=3, size=64, tile=32)
TRAIN_TINY = TileRecipe(scenes=2, seed=3, size=96, tile=32, empty_every=1)  # 18 tiles: a batch of 8 after validation


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    return methane_tiles(tmp_path_factory.mktemp("plume") / "tiles.zarr", TINY)


@pytest.fixture(scope="module")
def train_tiles(tmp_path_factory):
    return methane_tiles(tmp_path_factory.mktemp("plume_train") / "tiles.zarr", TRAIN_TINY)


# ------------------------------------------------------------------ features
def _flat_scene(seed: int = 0, shape=(5, 40, 30)):
    rng = np.random.default_rng(seed)
    wl, fw = emit_band_grid()
    bands = window_bands(wl)[: shape[0]]
    return rng.uniform(1.0, 2.0, size=shape).astype(np.float32), wl[bands], fw[bands]


def test_features_ignore_column_gains_and_brightness_and_are_standardised():
    cube, wl, fw = _flat_scene()
    gains = np.random.default_rng(1).uniform(0.9, 1.1, size=(5, 1, 30)).astype(np.float32)
    ref = plume_features(cube, wl, fw)
    assert ref.shape == (6, 40, 30)
    np.testing.assert_allclose(plume_features(cube * gains * 3.0, wl, fw), ref, atol=5e-5)
    np.testing.assert_allclose(np.sqrt((ref[:5].astype(np.float64) ** 2).mean(axis=(1, 2))), 1.0, rtol=1e-5)
    np.testing.assert_allclose(ref[:5].mean(axis=1), 0.0, atol=1e-5)  # column-centred


def test_matched_filter_channel_is_a_unit_snr_and_sees_methane():
    wl, fw = emit_band_grid()
    bands = window_bands(wl)
    k = target_spectrum(wl[bands], fw[bands]) / 1e5  # d ln L / d ppm·m
    rng = np.random.default_rng(2)
    logs = rng.normal(0.0, 0.01, size=(bands.size, 60, 60)) + rng.normal(0, 0.1, size=(1, 60, 60))  # albedo offset
    logs[:, 30, 30] += k * 4000.0
    mf = plume_features(np.exp(logs).astype(np.float32), wl[bands], fw[bands])[-1]
    background = np.delete(mf.ravel(), 30 * 60 + 30)
    assert abs(background.mean()) < 0.05 and 0.9 < background.std() < 1.1
    assert mf[30, 30] > 8 * background.std()


def test_features_are_zero_where_invalid_and_exclude_it_from_statistics():
    cube, wl, fw = _flat_scene(1, (4, 10, 10))
    cube[:, :, 3] = -9999.0
    cube[2, 5, 5] = np.nan
    valid = np.ones((10, 10), bool)
    valid[0, 0] = False
    out = plume_features(cube, wl, fw, valid)
    assert (out[:, :, 3] == 0).all() and (out[:, 5, 5] == 0).all() and (out[:, 0, 0] == 0).all()
    changed = cube.copy()
    changed[:, 0, 0] = 1e6  # a masked pixel's value must not move the others
    np.testing.assert_array_equal(plume_features(changed, wl, fw, valid), out)
    with pytest.raises(InvalidParameterError, match="valid"):
        plume_features(cube, wl, fw, valid[:5])
    with pytest.raises(InvalidParameterError, match="wavelength"):
        plume_features(cube, wl[:3], fw[:3])


def test_window_needs_the_ch4_bands():
    assert window_bands(emit_band_grid()[0]).size == 49
    with pytest.raises(InvalidParameterError, match="2122-2488"):
        window_bands(np.array([500.0, 600.0, 700.0]))


# ------------------------------------------------------------------ tiles
def test_tile_store_holds_features_masks_at_the_threshold_and_ignored_fill(tiles):
    store = TileStore.open(tiles)
    assert store.tile_shape == (50, 32, 32) and store.channels.names[-1] == "mf_snr"
    assert store.attrs["mask_classes"] == ["background", "plume"] and store.attrs["mask_ignore"] == MASK_IGNORE
    masks = np.asarray(store.array("mask"))
    settings = scene_settings(TINY, 0)
    scene = emit_scene(**settings)
    truth = scene.truth >= TINY.threshold_ppmm
    expected = np.where(scene.masks["fill"], MASK_IGNORE, truth).astype(np.uint8)
    tiles = [expected[r : r + 32, c : c + 32] for r in (0, 32) for c in (0, 32)]
    has = [(t == 1).any() for t in tiles]
    kept = [t for t, h, e in zip(tiles, has, np.cumsum(~np.array(has)) - 1) if h or e % TINY.empty_every == 0]
    assert any(has) and len(kept) == sum(has) + -(-(4 - sum(has)) // TINY.empty_every)
    np.testing.assert_array_equal(masks[: len(kept)], np.stack(kept))
    meta = store.attrs["meta"]
    assert meta["scenes"][0]["settings"]["seed"] == settings["seed"] and meta["recipe"]["threshold_ppmm"] == 100.0


def test_tile_sets_are_deterministic_and_seeds_differ(tiles, tmp_path):
    again = methane_tiles(tmp_path / "again.zarr", TINY)
    np.testing.assert_array_equal(np.asarray(TileStore.open(again).array("image")),
                                  np.asarray(TileStore.open(tiles).array("image")))  # fmt: skip
    seeds = {scene_settings(TileRecipe(seed=s), i)["seed"] for s in (0, 1) for i in range(48)}
    assert len(seeds) == 96
    peaks = [scene_settings(TileRecipe(), i)["plume_strength"] for i in range(200)]
    assert min(p[0] for p in peaks) >= 200 and max(p[1] for p in peaks) <= 5000


def test_methane_tiles_command(tmp_path):
    out = tmp_path / "t.zarr"
    args = ["--out", str(out), "--scenes", "1", "--size", "32", "--tile", "16", "--seed", "2", "-q"]
    done = CliRunner().invoke(synth_methane_tiles, args)
    assert done.exit_code == 0, done.output
    assert TileStore.open(out).count >= 1
    bad = CliRunner().invoke(synth_methane_tiles, [*args[:6], "--tile", "64"])
    assert bad.exit_code != 0 and "tile" in bad.output


# ------------------------------------------------------------------ losses
def test_segment_losses_known_values_and_ignore():
    logits = torch.tensor([[2.0, -1.0], [0.0, 0.0], [-1.0, 3.0]]).T.reshape(1, 2, 1, 3)
    mask = torch.tensor([[[0, 1, 1]]])
    ce = segment_loss(logits, mask, "ce")
    expected_ce = -torch.log_softmax(logits, 1)[0, mask[0, 0], 0, torch.arange(3)].mean()
    torch.testing.assert_close(ce, expected_ce)
    p_true = torch.softmax(logits, 1)[0, mask[0, 0], 0, torch.arange(3)]
    torch.testing.assert_close(segment_loss(logits, mask, "focal"), (-((1 - p_true) ** 2) * torch.log(p_true)).mean())
    p1 = torch.softmax(logits, 1)[0, 1, 0]
    dice = 1 - (2 * (p1 * torch.tensor([0.0, 1, 1])).sum() + 1) / (p1.sum() + 2 + 1)
    torch.testing.assert_close(segment_loss(logits, mask, "dice_ce"), expected_ce + dice)
    ignored = torch.tensor([[[0, 1, 255]]])
    torch.testing.assert_close(segment_loss(logits, ignored, "focal", 255),
                               (-(1 - p_true[:2]) ** 2 * torch.log(p_true[:2])).mean())  # fmt: skip
    with pytest.raises(InvalidParameterError, match="loss"):
        segment_loss(logits, mask, "hinge")


# ------------------------------------------------------------------ the shipped weights' command
def _train_args(name: str, tiles: Path, out: Path) -> list[str]:
    """The script's `hyperplex train` line for ``name`` at a tiny size (2 steps, the given tiles and folder)."""
    text = SCRIPT.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith(f"hyperplex train --model {name} ")]
    assert len(lines) == 1, f"{SCRIPT.name} must hold one `hyperplex train` line for {name}"
    line = re.sub(r'"\$\{[A-Z]+_STEPS:-\d+\}"', "2", lines[0].rstrip("&").strip())
    line = line.replace('"$OUT/tiles.zarr"', shlex.quote(str(tiles))).replace('"$OUT/', shlex.quote(str(out)) + '/"')
    args = shlex.split(line)[2:]
    assert "$" not in " ".join(args), args
    return args


@pytest.mark.parametrize("name", PRESETS)
def test_shipped_weights_come_from_the_documented_command(name, train_tiles, tmp_path):
    info = preset_info(name)
    card = info.weights_path.with_suffix(".md").read_text()
    assert re.search(r"^Command: `bash benchmarks/train_plume_models.sh`", card, re.M)
    assert 'cp "$OUT/$name/model.safetensors" "$WEIGHTS/$name.safetensors"' in SCRIPT.read_text()
    runs = []
    for run in ("a", "b"):
        done = CliRunner().invoke(train_command, _train_args(name, train_tiles, tmp_path / run))
        assert done.exit_code == 0, done.output
        runs.append(tmp_path / run / name / "model.safetensors")
    tiny, shipped = load_model(runs[0]), load_model(info.weights_path)
    assert (tiny.preset, tiny.config, tiny.trained_channels) == (
        shipped.preset,
        shipped.config,
        shipped.trained_channels,
    )
    assert tiny.config["num_classes"] == 2
    other = load_model(runs[1]).state_dict()
    for key, value in tiny.state_dict().items():  # same seed, same weights, bit for bit
        assert torch.equal(value, other[key]), key
    cfg = json.loads((tmp_path / "a" / name / "config.json").read_text())
    assert (cfg["loss"], cfg["task"], cfg["seed"]) == ("dice_ce", "segment", 0)


def test_segment_training_under_torchrun_two_processes(tiles, tmp_path):
    args = ["--model", "hyperefficientvit_plume", "--data", str(tiles), "--task", "segment", "--loss", "focal",
            "--max-steps", "2", "--batch-size", "2", "--device", "cpu", "--quiet"]  # fmt: skip
    args += ["--out", str(tmp_path / "ddp")]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "hyperplex.common.train", *args]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["step"] == 2
    assert len(set(summary["rank_weight_digests"])) == 1
    assert {"f1", "recall", "precision"} <= set(summary["metrics"])


# ------------------------------------------------------------------ the detection method
@pytest.fixture(scope="module")
def plume_scene():
    return emit_scene(lines=96, samples=96, plumes=1, plume_strength=3000.0, plume_size=4.0, seed=5, fill_columns=1)


@pytest.mark.parametrize("name", PRESETS)
def test_learned_method_sees_a_strong_plume(name, plume_scene):
    s = plume_scene
    cube = np.moveaxis(s.radiance, -1, 0)
    mask = np.zeros(s.truth.shape, bool)
    mask[:4] = True
    prob = learned_segmentation(cube, s.wavelengths, s.fwhm, mask=mask, model=name, device="cpu")
    assert prob.shape == s.truth.shape and prob.dtype == np.float32
    assert np.isnan(prob[:4]).all() and np.isnan(prob[:, s.masks["fill"][0]]).all()
    core, clear = s.truth > 1500, (s.truth == 0) & np.isfinite(prob)
    assert np.nanmean(prob[core]) > 0.5 > 0.2 > np.nanmean(prob[clear])


def test_learned_method_rejects_other_bands(plume_scene):
    s = plume_scene
    cube = np.moveaxis(s.radiance, -1, 0)
    with pytest.raises(ChannelMismatchError, match="trained on 49 bands"):
        learned_segmentation(cube[::2], s.wavelengths[::2], s.fwhm[::2], model="hyperefficientvit_plume")


def test_learned_methods_are_registered_as_probability_scores_with_a_fixed_threshold():
    from hyperplex.geo.methane.registry import SCORE, get_method, list_methods

    for name, preset in (("hypersegformer", "hypersegformer_plume"), ("hyperefficientvit", "hyperefficientvit_plume")):
        entry = get_method(name)
        assert name in list_methods(SCORE) and entry.threshold == 0.5 and entry.defaults["model"] == preset
    assert get_method("mag1c").threshold is None
