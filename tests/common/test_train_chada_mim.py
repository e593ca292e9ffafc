"""Masked channel-token pretraining of ChAda-ViT and the varying-panel tiles it trains on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import InvalidParameterError
from hyperplex.common.models import ChAdaViT, load_model
from hyperplex.common.train import train, write_tiles
from hyperplex.common.train.chada_mim import ChAdaMIM, chadavit_mim_tiny, patch_pixels
from hyperplex.common.train.panels import random_panel_tiles, slot_names, standardize_channels

TINY = dict(max_channels=12, img_size=16, patch_size=4, embed_dim=16, depth=1, num_heads=2, ffn_dim=32)


def _names(n: int) -> ChannelSet:
    return ChannelSet.from_names([f"m{i}" for i in range(n)])


def test_patch_pixels_are_the_token_order_of_the_patch_embedding():
    x = torch.arange(2 * 3 * 8 * 12, dtype=torch.float32).reshape(2, 3, 8, 12)
    patches = patch_pixels(x, 4)  # (B, C, N, 16), N = 2 rows x 3 cols
    assert patches.shape == (2, 3, 6, 16)
    torch.testing.assert_close(patches[1, 2, 4].reshape(4, 4), x[1, 2, 4:8, 4:8])  # row 1, column 1
    conv = torch.nn.Conv2d(1, 1, 4, stride=4, bias=False)  # the tokeniser's patch order is the same
    torch.nn.init.ones_(conv.weight)
    sums = conv(x.reshape(6, 1, 8, 12)).flatten(1).reshape(2, 3, 6)
    torch.testing.assert_close(sums, patches.sum(-1))


def test_absent_channels_change_neither_loss_nor_other_tokens():
    torch.manual_seed(0)
    model = ChAdaMIM(**TINY).eval()
    x = torch.randn(2, 5, 16, 16)
    present = torch.tensor([[True, True, True, False, False], [True] * 5])
    y = x.clone()
    y[0, 3:] = 100.0  # absent in sample 0
    losses = []
    for batch in (x, y):
        torch.manual_seed(1)
        losses.append(model(batch, _names(5), present)["loss"])
    torch.testing.assert_close(losses[0], losses[1])


def test_training_lowers_the_masked_reconstruction_error():
    torch.manual_seed(0)
    model = ChAdaMIM(mask_ratio=0.5, shuffle_slots=False, **TINY)  # slots = channel identity here
    base = torch.randn(8, 1, 4, 4).repeat_interleave(4, 2).repeat_interleave(4, 3)  # one value per patch
    x = torch.cat([base, 2 * base, -base], dim=1)  # channels predict each other exactly
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(100):
        loss = model(x, _names(3))["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5])


def test_slots_are_random_in_training_and_ordered_in_eval():
    model = ChAdaMIM(**TINY)
    torch.manual_seed(0)
    slots = model.train()._slots(64, 5, torch.device("cpu"))
    assert slots.shape == (64, 5) and all(len(set(row.tolist())) == 5 for row in slots)
    assert slots.max() > 5 and len({tuple(r.tolist()) for r in slots}) > 32  # all 12 slots used, per image
    assert torch.equal(model.eval()._slots(3, 5, torch.device("cpu")), torch.arange(5).expand(3, 5))
    assert torch.equal(ChAdaMIM(shuffle_slots=False, **TINY).train()._slots(2, 4, torch.device("cpu"))[1],
                       torch.arange(4))  # fmt: skip


def test_mim_feature_map_is_the_encoders_and_bad_options_are_refused():
    torch.manual_seed(0)
    model = ChAdaMIM(**TINY).eval()
    x = torch.randn(1, 4, 16, 16)
    torch.testing.assert_close(model.feature_map(x, _names(4)), model.encoder.feature_map(x, _names(4)))
    assert (model.feature_stride, model.feature_dim) == (4, 16)
    with pytest.raises(InvalidParameterError, match="mask_ratio"):
        ChAdaMIM(mask_ratio=1.0, **TINY)
    with pytest.raises(InvalidParameterError, match="num_classes"):
        ChAdaMIM(num_classes=3, **TINY)
    assert chadavit_mim_tiny().encoder.max_channels == 64


def test_standardize_channels():
    image = np.stack([np.full((4, 4), 7.0), np.arange(16.0).reshape(4, 4)])
    out = standardize_channels(image)
    assert out.dtype == np.float32 and np.all(out[0] == 0)
    np.testing.assert_allclose([out[1].mean(), out[1].std()], [0.0, 1.0], atol=1e-6)


def test_random_panel_tiles_show_random_subsets_of_each_images_channels():
    rng = np.random.default_rng(0)
    images = [rng.normal(size=(9, 16, 16)) * 3 + 5, rng.normal(size=(6, 16, 16))]
    tiles = random_panel_tiles(images, 8, 4, seed=1)
    assert tiles.shape == (8, 4, 8, 8) and tiles.dtype == np.float16
    source = standardize_channels(images[0])[:, :8, :8].astype(np.float16)
    picks = [int(np.argmin([np.abs(source[j] - t).max() for j in range(9)])) for t in tiles[0]]
    np.testing.assert_array_equal(tiles[0], source[picks])  # each tile channel is one source channel
    assert len(set(picks)) == 4
    with pytest.raises(InvalidParameterError, match="Image 1 has 6 channels"):
        random_panel_tiles(images, 8, 7)
    assert slot_names(3) == ["slot01", "slot02", "slot03"]


def test_mim_trains_with_the_trainer_and_exports_a_chadavit(tmp_path):
    rng = np.random.default_rng(0)
    tiles = random_panel_tiles([rng.normal(size=(8, 32, 32)) for _ in range(2)], 16, 6)
    store = write_tiles(tmp_path / "tiles.zarr", tiles, slot_names(6))
    args = {k: v for k, v in TINY.items() if k != "img_size"}
    result = train(model="chadavit_mim_tiny", data=str(store), task="mae", out=str(tmp_path / "run"), hcs=True,
                   model_args=args, batch_size=4, max_steps=2, log_every=1, quiet=True)  # fmt: skip
    assert result.step == 2 and np.isfinite(result.metrics["loss"])
    encoder = load_model(tmp_path / "run" / "encoder.safetensors")
    assert isinstance(encoder, ChAdaViT) and encoder.config["img_size"] == 16 and encoder.max_channels == 12


def test_profile_distances_are_rms_differences_over_present_channels():
    from hyperplex.common.train.distance_match import profile_distances

    profiles = torch.tensor([[[0.0, 3.0], [0.0, 4.0], [0.0, 100.0]]])  # (B=1, C=3, N=2)
    present = torch.tensor([[True, True, False]])
    d = profile_distances(profiles, present)
    torch.testing.assert_close(d[0, 0, 1], torch.tensor(5.0 / 2**0.5), atol=1e-5, rtol=0)
    torch.testing.assert_close(d[0], d[0].T)


def test_distance_loss_is_zero_for_an_isometry_and_positive_otherwise():
    from hyperplex.common.train.distance_match import patch_distance_loss

    torch.manual_seed(0)
    profiles = torch.randn(3, 5, 7)  # (B, C, N)
    present = torch.ones(3, 5, dtype=torch.bool)
    present[1, 3:] = False
    features = profiles.transpose(1, 2) * present[:, None, :]  # D = C: distances equal the profile's
    features[1] *= (5 / 3) ** 0.5  # image 1 has 3 of 5 channels: same RMS over them
    rotation = torch.linalg.qr(torch.randn(5, 5))[0]
    zero = torch.zeros(())
    assert float(patch_distance_loss(features @ rotation, profiles, present, zero)) < 1e-4
    scaled = patch_distance_loss(2 * features, profiles, present, torch.tensor(-np.log(2.0), dtype=torch.float32))
    assert float(scaled) < 1e-4  # one global scale is learned
    assert float(patch_distance_loss(torch.randn(3, 7, 5), profiles, present, zero)) > 0.1


def test_mask_ratio_range_is_drawn_per_image_and_checked():
    model = ChAdaMIM(mask_ratio=(0.0, 0.5), **TINY)
    torch.manual_seed(0)
    fraction = model._mask(256, 6, 64, torch.device("cpu")).float().mean(dim=(1, 2))
    assert fraction.min() < 0.05 and 0.45 < fraction.max() < 0.6 and abs(float(fraction.mean()) - 0.25) < 0.03
    fixed = ChAdaMIM(mask_ratio=0.3, **TINY)._mask(64, 6, 64, torch.device("cpu")).float().mean(dim=(1, 2))
    assert abs(float(fixed.mean()) - 0.3) < 0.02 and float(fixed.std()) < 0.05
    for bad in ((0.5, 0.2), (0.0, 0.0), (0.1, 1.0)):
        with pytest.raises(InvalidParameterError, match="mask_ratio"):
            ChAdaMIM(mask_ratio=bad, **TINY)
    with pytest.raises(InvalidParameterError, match="distance_weight"):
        ChAdaMIM(distance_weight=-1.0, **TINY)


def _distance_agreement(model: ChAdaMIM, x: torch.Tensor) -> float:
    """Correlation of inference feature distances with patch-mean distances over all patch pairs."""
    from hyperplex.common.train.distance_match import pairwise_distances, profile_distances

    was = model.training
    with torch.no_grad():
        fmap = model.eval().feature_map(x, _names(x.shape[1])).flatten(2).transpose(1, 2)
        pred = pairwise_distances(fmap).flatten()
        truth = profile_distances(patch_pixels(x, 4).mean(-1), torch.ones(x.shape[:2], dtype=torch.bool)).flatten()
    model.train(was)
    return float(np.corrcoef(pred.numpy(), truth.numpy())[0, 1])


def test_distance_term_trains_features_whose_distances_follow_the_patch_means():
    torch.manual_seed(0)
    model = ChAdaMIM(mask_ratio=(0.0, 0.3), distance_weight=1.0, **TINY)
    base = torch.randn(16, 3, 4, 4).repeat_interleave(4, 2).repeat_interleave(4, 3)  # one value per patch
    before = _distance_agreement(model, base)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(120):
        out = model(base, _names(3))
        optimizer.zero_grad()
        out["loss"].backward()
        optimizer.step()
        losses.append(float(out["distance_mse"]))
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5])
    after = _distance_agreement(model, base)  # inference: every channel visible, slots 0..C-1
    assert after > before + 0.2 and after > 0.7, (before, after)


def test_mean_patch_init_reads_only_the_patch_mean_and_frozen_stays_fixed():
    torch.manual_seed(0)
    model = ChAdaMIM(patch_init="mean", **TINY)
    flat = torch.randn(1, 2, 4, 4).repeat_interleave(4, 2).repeat_interleave(4, 3)  # one value per 4 px patch
    texture = torch.randn(1, 2, 16, 16)
    means = patch_pixels(texture, 4).mean(-1).reshape(1, 2, 4, 4)
    texture = texture - means.repeat_interleave(4, 2).repeat_interleave(4, 3)
    embed = model.encoder.patch_embed
    torch.testing.assert_close(embed(flat + texture), embed(flat), atol=1e-5, rtol=0)  # zero-mean texture: no effect
    default = ChAdaMIM(**TINY).encoder.patch_embed
    assert not torch.allclose(default(flat + texture), default(flat), atol=1e-3)  # the default sees texture
    frozen = ChAdaMIM(patch_init="mean-frozen", **TINY)
    before = frozen.encoder.patch_embed.proj.weight.clone()
    optimizer = torch.optim.AdamW([p for p in frozen.parameters() if p.requires_grad], lr=1e-2)
    frozen(torch.randn(2, 3, 16, 16), _names(3))["loss"].backward()
    optimizer.step()
    assert torch.equal(frozen.encoder.patch_embed.proj.weight, before)
    assert model.encoder.patch_embed.proj.weight.requires_grad
    with pytest.raises(InvalidParameterError, match="patch_init"):
        ChAdaMIM(patch_init="gauss", **TINY)


def test_patch_offset_shifts_the_patch_mean_before_the_gains():
    torch.manual_seed(0)
    plain = ChAdaMIM(patch_init="mean", **TINY).encoder.patch_embed
    torch.manual_seed(0)
    shifted = ChAdaMIM(patch_init="mean", patch_offset=2.0, **TINY).encoder.patch_embed
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(shifted(x), plain(x + 2.0), atol=1e-5, rtol=0)  # g * (mean + 2)
    with pytest.raises(InvalidParameterError, match="patch_offset"):
        ChAdaMIM(patch_offset=1.0, **TINY)  # the default projection has no patch mean to shift


def _sign_agreement(model, c: int) -> float:
    """Mean cosine, between channels, of f(channel i at +1) - f(channel i at -1) on one-patch images."""
    p = model.patch_size if isinstance(model, ChAdaViT) else model.encoder.patch_size
    x = torch.eye(c)[:, :, None, None].expand(c, c, p, p)  # image i: channel i at 1, the others at 0
    with torch.no_grad():
        odd = model.feature_map(x, _names(c))[:, :, 0, 0] - model.feature_map(-x, _names(c))[:, :, 0, 0]
    odd = odd / odd.norm(dim=1, keepdim=True)
    return float((odd @ odd.T)[~torch.eye(c, dtype=torch.bool)].mean())


def _odd_part_agreement(offset: float) -> float:
    torch.manual_seed(0)
    return _sign_agreement(ChAdaMIM(patch_init="mean", slot_std=1.0, patch_offset=offset, **TINY).eval(), 6)


def test_without_offset_the_sign_of_a_marker_is_not_bound_to_its_channel():
    # Zero-centred token contents: what a channel's sign changes in the pooled feature is the same direction
    # for every channel (only the sum over channels keeps the sign); shifted contents bind it to the channel.
    assert _odd_part_agreement(0.0) > 0.95
    assert _odd_part_agreement(2.0) < 0.5


def test_the_shipped_weights_read_the_patch_mean_plus_2_and_tell_dim_from_bright_per_marker():
    from hyperplex.common.models import create_model

    model = create_model("chadavit_tiny_patch8", pretrained=True)
    proj = model.patch_embed.proj
    gains = proj.weight.sum((1, 2, 3))
    torch.testing.assert_close(proj.weight, (gains / 64)[:, None, None, None].expand_as(proj.weight))  # patch mean
    torch.testing.assert_close(proj.bias, 2.0 * gains)  # ... plus 2 (``--patch-offset 2``, kept fixed)
    assert _sign_agreement(model, 8) < 0.5  # the previous weights (no offset): 0.99
