"""ChannelViT: channel-subset invariance, Hierarchical Channel Sampling, official key layout."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from hyperplex.common.errors import ChannelMismatchError
from hyperplex.common.models import ChannelViT, create_model
from hyperplex.common.models.channel_vit import convert_channelvit_state_dict
from hyperplex.common.models.hcs import HierarchicalChannelSampler

NAMES = ["DNA", "ER", "RNA", "AGP", "Mito", "BF1", "BF2", "BF3"]


def _model(**kw):
    torch.manual_seed(0)
    return create_model("channelvit_test", channel_vocab=NAMES, in_chans=None, **kw).eval()


def test_subset_by_mask_equals_subset_alone():
    model = _model()
    x = torch.randn(2, 8, 32, 32)
    keep = [1, 4, 6]
    mask = torch.zeros(2, 8, dtype=torch.bool)
    mask[:, keep] = True
    with torch.no_grad():
        masked = model(x, NAMES, channel_mask=mask)
        alone = model(x[:, keep], [NAMES[i] for i in keep])
        full = model(x, NAMES)
    torch.testing.assert_close(masked, alone, rtol=1e-5, atol=1e-5)
    assert (full - alone).abs().max() > 1e-3  # the other channels do matter when present


def test_mixed_channel_sets_in_one_batch():
    model = _model()
    x = torch.randn(2, 8, 32, 32)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0, 0, 0], [0, 0, 1, 1, 1, 1, 1, 0]], dtype=torch.bool)
    with torch.no_grad():
        batch = model(x, NAMES, channel_mask=mask)
        first = model(x[:1, :3], NAMES[:3])
        second = model(x[1:, 2:7], NAMES[2:7])
    torch.testing.assert_close(batch, torch.cat([first, second]), rtol=1e-5, atol=1e-5)


def test_channel_identity_matters_and_unknown_names_fail():
    model = _model()
    x = torch.randn(1, 2, 32, 32)
    with torch.no_grad():
        assert (model(x, ["DNA", "ER"]) - model(x, ["RNA", "Mito"])).abs().max() > 1e-4
    with pytest.raises(ChannelMismatchError, match="vocabulary"):
        model(x, ["DNA", "Actin"])


def test_hcs_training_forward_equals_eval_on_sampled_subset():
    model = _model().train()
    model.hcs.generator = torch.Generator().manual_seed(5)
    x = torch.randn(2, 8, 32, 32)
    out = model(x, NAMES)
    keep = HierarchicalChannelSampler(seed=5).sample(8).tolist()
    with torch.no_grad():
        ref = model.eval()(x[:, keep], [NAMES[i] for i in keep])
    torch.testing.assert_close(out.detach(), ref, rtol=1e-5, atol=1e-5)
    assert model.hcs(8) is None  # eval mode keeps every channel


def test_hcs_distribution():
    """m ~ U{1..C}; given m the subset is uniform; channel c kept with probability (C+1)/(2C)."""
    c, draws = 6, 12000
    sampler = HierarchicalChannelSampler(seed=0).train()
    samples = [sampler(c).tolist() for _ in range(draws)]
    sizes = np.bincount([len(s) for s in samples], minlength=c + 1)[1:]
    assert stats.chisquare(sizes).pvalue > 1e-3
    triples = [tuple(s) for s in samples if len(s) == 3]
    counts = np.array([triples.count(t) for t in set(triples)])
    assert len(counts) == math.comb(c, 3) and stats.chisquare(counts).pvalue > 1e-3
    inclusion = np.bincount(np.concatenate(samples), minlength=c) / draws
    np.testing.assert_allclose(inclusion, (c + 1) / (2 * c), atol=0.02)
    # the test can fail: independent channel dropout (p=0.5) does not give uniform subset sizes
    gen = np.random.default_rng(0)
    dropout_sizes = np.bincount((gen.random((draws, c)) < 0.5).sum(1), minlength=c + 1)[1:]
    assert stats.chisquare(dropout_sizes).pvalue < 1e-6


# ---------------------------------------------------------------- official key layout
def _official_state_dict(depth, dim, in_chans, patch, grid, hidden, plain=False, seed=0):
    """Random weights in the insitro/ChannelViT key layout (hcs_channel_vit.py or channel_vit.py)."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g) * 0.1

    sd = {
        "cls_token": r(1, 1, dim),
        "pos_embed": r(1, grid * grid + 1, dim),
        "patch_embed.proj.weight": r(dim, 1, 1, patch, patch),
        "patch_embed.proj.bias": r(dim),
        "norm.weight": 1 + r(dim),
        "norm.bias": r(dim),
    }
    sd["patch_embed.channel_embed" if plain else "patch_embed.channel_embed.weight"] = (
        r(1, dim, in_chans, 1, 1) if plain else r(in_chans, dim)
    )
    for i in range(depth):
        p = f"blocks.{i}."
        sd.update({p + "norm1.weight": 1 + r(dim), p + "norm1.bias": r(dim), p + "attn.qkv.weight": r(3 * dim, dim)})
        sd.update({p + "attn.qkv.bias": r(3 * dim), p + "attn.proj.weight": r(dim, dim), p + "attn.proj.bias": r(dim)})
        sd.update({p + "norm2.weight": 1 + r(dim), p + "norm2.bias": r(dim), p + "mlp.fc1.weight": r(hidden, dim)})
        sd.update({p + "mlp.fc1.bias": r(hidden), p + "mlp.fc2.weight": r(dim, hidden), p + "mlp.fc2.bias": r(dim)})
    return sd


def _official_forward(sd, x, idx, depth, heads, patch):
    """The official forward, written from its equations: Conv3d tokens, explicit-softmax attention."""
    t = F.conv3d(x.unsqueeze(1), sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=(1, patch, patch))
    emb = sd["patch_embed.channel_embed.weight"][idx]  # (C, D)
    t = (t + emb.t()[None, :, :, None, None]).flatten(2).transpose(1, 2)
    b, c, d = x.shape[0], x.shape[1], t.shape[-1]
    t = torch.cat([sd["cls_token"].expand(b, -1, -1), t], dim=1)
    pos = sd["pos_embed"]
    t = t + torch.cat([pos[:, :1], pos[:, 1:].repeat(1, c, 1)], dim=1)
    for i in range(depth):
        p = f"blocks.{i}."
        h = F.layer_norm(t, (d,), sd[p + "norm1.weight"], sd[p + "norm1.bias"], eps=1e-6)
        qkv = F.linear(h, sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"]).reshape(b, -1, 3, heads, d // heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1) * (d // heads) ** -0.5).softmax(-1)
        h = (attn @ v).transpose(1, 2).reshape(b, -1, d)
        t = t + F.linear(h, sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
        h = F.layer_norm(t, (d,), sd[p + "norm2.weight"], sd[p + "norm2.bias"], eps=1e-6)
        h = F.linear(F.gelu(F.linear(h, sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"])), sd[p + "mlp.fc2.weight"])
        t = t + h + sd[p + "mlp.fc2.bias"]
    return F.layer_norm(t, (d,), sd["norm.weight"], sd["norm.bias"], eps=1e-6)[:, 0]


def test_official_hcs_layout_loads_strictly_and_matches_reference():
    sd = _official_state_dict(depth=2, dim=32, in_chans=5, patch=8, grid=4, hidden=128)
    model = ChannelViT(in_chans=5, img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2).eval()
    model.load_state_dict(convert_channelvit_state_dict(sd), strict=True)
    x = torch.randn(2, 3, 32, 32)
    idx = [4, 0, 2]  # a channel subset, in any order
    with torch.no_grad():
        ours = model(x, [f"c{i}" for i in idx])
    torch.testing.assert_close(ours, _official_forward(sd, x, torch.tensor(idx), 2, 2, 8), rtol=1e-4, atol=1e-5)


def test_official_plain_layout_and_prefixes():
    sd = _official_state_dict(depth=1, dim=32, in_chans=3, patch=8, grid=4, hidden=128, plain=True)
    sd = {"module.backbone." + k: v for k, v in sd.items()}
    converted = convert_channelvit_state_dict(sd)
    model = ChannelViT(in_chans=3, img_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2)
    model.load_state_dict(converted, strict=True)
    torch.testing.assert_close(
        model.channel_embed.weight, sd["module.backbone.patch_embed.channel_embed"][0, :, :, 0, 0].t()
    )


def test_feature_map_is_channel_mean_of_tokens():
    model = _model()
    x = torch.randn(1, 3, 32, 48)  # non-square: positional embedding resampled
    with torch.no_grad():
        fmap = model.feature_map(x, NAMES[:3])
        tokens = model.forward_features(x, NAMES[:3])[:, 1:].reshape(1, 3, 4, 6, -1)
    assert fmap.shape == (1, 32, 4, 6)
    torch.testing.assert_close(fmap, tokens.mean(1).permute(0, 3, 1, 2))
