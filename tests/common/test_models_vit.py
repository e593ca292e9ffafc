"""The plain fixed-channel ViT (``vit_*``): shapes, token count, channel refusal, training with the shared trainer."""

import numpy as np
import pytest
import torch

from hyperplex.bio.synth import tissue
from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import ChannelMismatchError, InvalidParameterError
from hyperplex.common.models import ViT, create_model, preset_info
from hyperplex.common.train import load_task_model, scene_tiles, train, write_tiles


def _markers(n: int) -> ChannelSet:
    return ChannelSet.from_names([f"c{i}" for i in range(n)])


def test_shapes_tokens_and_positions_resampled():
    torch.manual_seed(0)
    model = create_model("vit_test", num_classes=5).eval()
    x = torch.randn(3, 8, 32, 32)
    with torch.no_grad():
        tokens = model.forward_features(x, _markers(8))
        assert tokens.shape == (3, model.num_tokens(8, 32), 32) == (3, 1 + 16, 32)
        assert model(x, _markers(8)).shape == (3, 5)
        torch.testing.assert_close(model(x).argmax(1), model(x, _markers(8)).argmax(1))  # channels optional
        big = model.feature_map(torch.randn(2, 8, 48, 64), _markers(8))
    assert big.shape == (2, 32, 6, 8) and torch.isfinite(big).all()
    assert model.num_tokens(1, 32) == model.num_tokens(50, 32) == 17  # channels mixed into each patch token
    assert isinstance(model, ViT) and not ViT.channel_adaptive


def test_the_first_layer_mixes_all_channels():
    """Changing one channel changes the CLS output: every channel feeds every patch token."""
    torch.manual_seed(0)
    model = create_model("vit_test").eval()
    x = torch.randn(1, 8, 32, 32)
    y = x.clone()
    y[:, 5] += 1.0
    with torch.no_grad():
        assert not torch.allclose(model(x), model(y))
    assert model.patch_embed.proj.weight.shape == (32, 8, 8, 8)


def test_refuses_another_channel_count_and_other_channels():
    model = create_model("vit_test")
    with pytest.raises(ChannelMismatchError, match=r"built for 8 input channels but got 3.*in_chans=3"):
        model(torch.randn(1, 3, 32, 32), _markers(3))
    with pytest.raises(ChannelMismatchError, match="built for 8 input channels but got 9"):
        model(torch.randn(1, 9, 32, 32))
    with pytest.raises(InvalidParameterError, match="channel_mask"):
        model(torch.randn(1, 8, 32, 32), _markers(8), torch.ones(1, 8, dtype=torch.bool))
    model.set_trained_channels(_markers(8))
    swapped = ChannelSet.from_names(["c1", "c0", *[f"c{i}" for i in range(2, 8)]])
    with pytest.raises(ChannelMismatchError, match="channel 0 is 'c1'.*trained with 'c0'"):
        model(torch.randn(1, 8, 32, 32), swapped)


def test_sized_to_an_image_and_like_for_like_with_channelvit():
    markers = ChannelSet.from_names([f"CD{i}" for i in range(12)])
    model = create_model("vit_test", channels=markers)
    assert model.in_chans == 12 and preset_info("vit_test").sized_by == "in_chans"
    assert model(torch.randn(2, 12, 32, 32), markers).shape == (2, 32)
    vit, cvit = create_model("vit_tiny_patch16").config, create_model("channelvit_tiny_patch16").config
    same = ("img_size", "patch_size", "embed_dim", "depth", "num_heads", "mlp_ratio", "qkv_bias", "norm_eps")
    assert {k: vit[k] for k in same} == {k: cvit[k] for k in same}


def test_trains_with_the_shared_trainer_and_reloads(tmp_path, single_thread):
    t = tissue(size=96, markers=5, seed=0, he=False)
    tiles = scene_tiles(t.image, 32)
    labels = (tiles["image"][:, 4].mean(axis=(1, 2)) > np.median(tiles["image"][:, 4].mean(axis=(1, 2)))).astype(int)
    store = write_tiles(tmp_path / "tiles.zarr", tiles["image"], t.channels, label=labels, label_classes=["lo", "hi"])
    result = train(model="vit_test", data=str(store), task="classify", out=str(tmp_path / "run"), batch_size=4,
                   max_steps=3, log_every=1, quiet=True, lr=1e-3)  # fmt: skip
    assert result.step == 3 and np.isfinite(result.metrics["loss"])
    net = result.objective.net.eval()
    assert net.mode == "direct" and net.model.config["num_classes"] == 2 and net.model.in_chans == 5
    reloaded = load_task_model(tmp_path / "run")
    x = torch.randn(2, 5, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(x, t.channels), net(x, t.channels))
    with pytest.raises(ChannelMismatchError, match="got 4"):
        reloaded(x[:, :4], t.channels.names[:4])
