"""Checks shared by the channel-adaptive classifier families (ChannelViT, ChAda-ViT, LESS ViT) and Hyper-MAE.

The classifier families are found in the registry: every ``*_test`` preset whose model is channel
adaptive and has a ``num_classes`` head. Per preset: output shapes for 1, 3, 8, 50 and 285 channels,
no NaN, gradients reach every parameter, save/load round trip gives identical outputs, a few
optimizer steps lower a loss, attention is fused.
"""

import numpy as np
import pytest
import torch

from hyperplex.common.channels import ChannelSet
from hyperplex.common.models import LESSViT, create_model, list_models, load_model

COUNTS = [1, 3, 8, 50, 285]
EMBED = 32


def _channels(count: int) -> ChannelSet:
    """Channels every family accepts: names ``c<i>`` (vocabularies) and wavelengths (LESS ViT)."""
    return ChannelSet.from_wavelengths(np.linspace(400.0, 2500.0, count), names=[f"c{i}" for i in range(count)])


def _build(preset: str, count: int, **extra):
    """The preset with enough channel slots / vocabulary entries for ``count`` channels."""
    config = create_model(preset).config
    slots = {k: max(count, config[k]) for k in ("in_chans", "max_channels") if config.get(k) is not None}
    return create_model(preset, **slots, **extra)


def _is_adaptive_classifier(preset: str) -> bool:
    model = create_model(preset)
    return type(model).channel_adaptive and "num_classes" in model.config


FAMILIES = [p for p in list_models("*_test") if _is_adaptive_classifier(p)]


def test_classifier_families_found():
    assert {"channelvit_test", "chadavit_test", "lessvit_test"} <= set(FAMILIES)


@pytest.mark.parametrize("count", COUNTS)
@pytest.mark.parametrize("preset", FAMILIES)
def test_forward_shapes_and_finite(preset, count):
    torch.manual_seed(0)
    model = _build(preset, count).eval()
    batch = 1 if count > 50 else 2
    x = torch.randn(batch, count, 32, 32)
    with torch.no_grad():
        out = model(x, _channels(count))
        feats = model.forward_features(x, _channels(count))
    assert out.shape == (batch, EMBED)
    assert torch.isfinite(out).all() and torch.isfinite(feats).all()
    tokens = model.num_tokens(count, 32)
    assert feats[0].numel() == tokens * EMBED


@pytest.mark.parametrize("preset", FAMILIES)
def test_gradients_reach_every_parameter(preset):
    torch.manual_seed(0)
    model = _build(preset, 8, num_classes=3).train()
    if hasattr(model, "hcs"):
        model.hcs.enabled = False  # all channels present so every embedding row is used
    x = torch.randn(2, 8, 32, 32)
    model(x, _channels(8)).square().sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    assert all(bool(p.grad.abs().sum() > 0) for n, p in model.named_parameters() if "channel" not in n)


@pytest.mark.parametrize("preset", FAMILIES)
def test_save_load_round_trip(preset, tmp_path):
    torch.manual_seed(1)
    model = _build(preset, 8).eval()
    model.trained_channels = ChannelSet.coerce(_channels(8))
    path = tmp_path / f"{preset}.safetensors"
    model.save(path)
    loaded = load_model(path)
    assert type(loaded) is type(model) and loaded.preset == preset and loaded.config == model.config
    assert loaded.trained_channels == model.trained_channels
    x = torch.randn(2, 8, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x, _channels(8)), loaded(x, _channels(8)))


@pytest.mark.parametrize("preset", FAMILIES)
def test_training_smoke_lowers_loss(preset):
    """Few Adam steps on a synthetic 2-class problem (bright vs dark images) lower the loss."""
    torch.manual_seed(0)
    model = _build(preset, 6, num_classes=2).train()
    if hasattr(model, "hcs"):
        model.hcs.enabled = False
    x = torch.randn(8, 6, 32, 32, generator=torch.Generator().manual_seed(0))
    y = torch.arange(8) % 2
    x[y == 1] += 1.0
    x[y == 0] -= 1.0
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        loss = torch.nn.functional.cross_entropy(model(x, _channels(6)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses


def test_hypermae_shapes_grads_round_trip(tmp_path):
    torch.manual_seed(0)
    model = create_model("lessvit_hypermae_test")
    wl = _channels(8)
    x = torch.randn(2, 8, 32, 32)
    out = model(x, wl)
    assert out["pred"].shape == out["target"].shape == (2, 8, 16, 64)
    assert out["pos_mask"].sum(1).tolist() == [12.0, 12.0]  # 75 % of 16 positions masked
    assert out["channel_mask"].sum(1).tolist() == [4.0, 4.0]  # 50 % of 8 channels masked
    out["loss"].backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    path = tmp_path / "mae.safetensors"
    model.save(path)
    loaded = load_model(path)
    model.generator, loaded.generator = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(model.eval()(x, wl)["loss"], loaded(x, wl)["loss"])


@pytest.mark.parametrize("count", [1, 3, 50])
def test_hypermae_channel_counts(count):
    model = create_model("lessvit_hypermae_test")
    out = model(torch.randn(1, count, 32, 32), _channels(count))
    assert torch.isfinite(out["loss"]) and out["pred"].shape == (1, count, 16, 64)
    assert out["channel_mask"].sum() == (0 if count == 1 else count - max(int(count * 0.5), 2))


def test_hypermae_pretraining_smoke_lowers_loss():
    """Hyper-MAE steps on spatially smooth synthetic cubes lower the reconstruction loss."""
    torch.manual_seed(0)
    model = create_model("lessvit_hypermae_test", norm_pix_loss=False)
    model.generator = torch.Generator().manual_seed(0)
    wl = _channels(6)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    x = torch.stack([torch.sin(3 * xx + k) + yy * k / 6 for k in range(6)])[None].repeat(2, 1, 1, 1)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(10):
        loss = model(x, wl)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.75 * np.mean(losses[:3]), losses


def _record_attention(monkeypatch):
    """Route every attention through a recorder (all layers call F.scaled_dot_product_attention)."""
    import hyperplex.common.layers.attention as attention_module
    import hyperplex.common.layers.low_rank_attention as low_rank_module

    calls = []
    real = torch.nn.functional.scaled_dot_product_attention

    class _Recorder:
        def __getattr__(self, name):
            return getattr(torch.nn.functional, name)

        @staticmethod
        def scaled_dot_product_attention(q, k, v, **kw):
            calls.append((q.shape[-2], k.shape[-2]))
            return real(q, k, v, **kw)

    monkeypatch.setattr(attention_module, "F", _Recorder())
    monkeypatch.setattr(low_rank_module, "F", _Recorder())
    return calls


@pytest.mark.parametrize("preset", FAMILIES)
def test_attention_is_fused_and_never_quadratic_in_c_times_n(preset, monkeypatch):
    calls = _record_attention(monkeypatch)
    model = _build(preset, 12).eval()
    with torch.no_grad():
        model(torch.randn(1, 12, 32, 32), _channels(12))
    assert calls, "attention must go through fused scaled_dot_product_attention"
    longest = max(max(c) for c in calls)
    if isinstance(model, LESSViT):
        assert longest == max(12 + 1, 16 + 1)  # spectral (C+1) or spatial (N+1) tokens only
    else:
        assert longest == 1 + 12 * 16  # one sequence of all channel tokens, but fused (no L x L tensor kept)
