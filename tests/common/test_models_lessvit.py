"""LESS ViT and Hyper-MAE: invariances, LESS attention equations, masking, loss, official key layout."""

import numpy as np
import pytest
import torch

from hyperplex.common.errors import ChannelMismatchError
from hyperplex.common.layers import LowRankAttention, perception_field_mask, positional_channel_embed, sincos_1d
from hyperplex.common.models import HyperMAE, LESSViT, create_model
from hyperplex.common.models.hyper_mae import convert_hypermae_state_dict, hyper_mae_loss
from hyperplex.common.models.less_vit import convert_lessvit_state_dict

WL = [442.7, 492.4, 559.8, 664.6, 704.1, 740.5, 782.8, 832.8, 864.7, 945.1, 1373.5, 1613.7, 2202.4]


def _model(**kw):
    torch.manual_seed(0)
    return create_model("lessvit_test", **kw).eval()


@pytest.mark.parametrize("mask_on", [False, True])
def test_cls_invariant_to_channel_permutation_with_wavelengths(mask_on):
    model = _model(use_perception_field_mask=mask_on)
    x = torch.randn(2, 13, 32, 32)
    perm = torch.randperm(13, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a = model(x, WL)
        b = model(x[:, perm], [WL[i] for i in perm])
        feats_a, feats_b = model.forward_features(x, WL), model.forward_features(x[:, perm], [WL[i] for i in perm])
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    # channel tokens are permuted along with their channels (equivariance)
    torch.testing.assert_close(feats_b[:, 1:], feats_a[:, 1:][:, perm], rtol=1e-4, atol=1e-5)


def test_wavelengths_and_gsd_matter():
    model = _model()
    x = torch.randn(1, 4, 32, 32)
    with torch.no_grad():
        base = model(x, WL[:4])
        assert (base - model(x, WL[4:8])).abs().max() > 1e-4  # permuting data but not wavelengths changes it
        assert (base - model(x, WL[:4], gsd=30.0)).abs().max() > 1e-4
    with pytest.raises(ChannelMismatchError, match="wavelengths"):
        model(x, ["a", "b", "c", "d"])
    with pytest.raises(ChannelMismatchError, match="radar"):
        model(x, [450.0, 550.0, 650.0, 5500.0])


def test_radar_channels_use_radar_embedding():
    model = _model(radar=True)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        tokens = model.patch_tokens(x, torch.tensor([450.0, 5500.0, 650.0]))
        torch.testing.assert_close(tokens[:, [0, 2]], model.optical_patch_embed(x[:, [0, 2]]))
        torch.testing.assert_close(tokens[:, [1]], model.radar_patch_embed(x[:, [1]]))


def test_positional_channel_embedding_equation():
    emb = positional_channel_embed(torch.tensor([500.0, 900.0]), (2, 3), 8, gsd=10.0)
    assert emb.shape == (3, 7, 8)
    torch.testing.assert_close(emb[0, 0], torch.zeros(8))
    torch.testing.assert_close(emb[1, 0], sincos_1d(torch.tensor(500.0), 8) / 2)
    # token (channel 900 nm, row 1, col 2): (chan + [col 20 m | row 10 m]) / 2
    pos = torch.cat([sincos_1d(torch.tensor(20.0), 4), sincos_1d(torch.tensor(10.0), 4)])
    torch.testing.assert_close(emb[2, 1 + 5], (sincos_1d(torch.tensor(900.0), 8) + pos) / 2)


def test_perception_field_mask():
    mask = perception_field_mask((4, 4), patch_size=8, gsd=10.0, radius=160.0)  # 2 patch steps
    assert mask.shape == (17, 17) and mask[0].all() and mask[:, 0].all()
    assert mask[1, 1:].sum() == 6  # corner (0,0): (0,0) (0,1) (0,2) (1,0) (1,1) (2,0)
    assert torch.equal(mask, mask.t())


def test_low_rank_attention_is_a_kronecker_product_of_attentions():
    """For every head: out = sum_r (A_c^r V_c) ⊗ (A_s^r V_s), i.e. (A_c ⊗ A_s)(V_c ⊗ V_s) per rank."""
    torch.manual_seed(0)
    heads, c_hd, s_hd, rank = 2, 2, 3, 2
    attn = LowRankAttention(heads * c_hd * s_hd, heads * c_hd, heads * s_hd, heads, qkv_bias=True, rank=rank)
    attn.proj = torch.nn.Identity()
    xc, xs = torch.randn(1, 5, heads * c_hd), torch.randn(1, 4, heads * s_hd)
    out = attn(xc, xs)  # (1, C, N, D)

    def branch(mod, x, hd):
        n = x.shape[0]
        qk = mod.qk(x).reshape(n, 2, heads, rank, hd)
        v = mod.v(x).reshape(n, heads, hd)
        a = torch.einsum("ihrd,jhrd->hrij", qk[:, 0], qk[:, 1]).div(hd**0.5).softmax(-1)
        return a, v

    a_c, v_c = branch(attn.channel_branch, xc[0], c_hd)
    a_s, v_s = branch(attn.spatial_branch, xs[0], s_hd)
    for h in range(heads):
        expected = torch.zeros(5 * 4, c_hd * s_hd)
        for r in range(rank):
            kron_a = torch.kron(a_c[h, r], a_s[h, r])  # (C*N, C*N): fine at this toy size
            kron_v = torch.einsum("ca,nb->cnab", v_c[:, h], v_s[:, h]).reshape(20, -1)
            expected += kron_a @ kron_v
        got = out[0, :, :, h * c_hd * s_hd : (h + 1) * c_hd * s_hd].reshape(20, -1)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_hyper_mae_loss_equation():
    pred, target = torch.zeros(1, 2, 3, 4), torch.ones(1, 2, 3, 4)
    pred[0, 1] = 1.0  # channel 1 is perfect, channel 0 has error 1 everywhere
    pos_mask, chan_mask = torch.tensor([[1.0, 0.0, 1.0]]), torch.tensor([[1.0, 0.0]])
    out = hyper_mae_loss(pred, target, pos_mask, chan_mask)
    assert out["pos_loss"].item() == pytest.approx(0.5)  # mean over channels of e = 0.5 at every position
    assert out["channel_loss"].item() == pytest.approx(1.0)  # masked channel 0 has e = 1
    assert out["loss"].item() == pytest.approx(1.5)


def test_hyper_mae_prediction_ignores_masked_inputs():
    torch.manual_seed(0)
    model = create_model("lessvit_hypermae_test").eval()
    x = torch.randn(1, 6, 32, 32)
    wl = WL[:6]
    model.generator = torch.Generator().manual_seed(4)
    first = model(x, wl)
    chan_masked = first["channel_mask"][0].bool()
    pos_masked = first["pos_mask"][0].bool().reshape(4, 4)
    y = x.clone()
    y[:, chan_masked] += 5.0  # masked channels, everywhere
    pix = pos_masked.repeat_interleave(8, 0).repeat_interleave(8, 1)
    y[:, :, pix] -= 3.0  # masked positions, every channel
    model.generator = torch.Generator().manual_seed(4)
    second = model(y, wl)
    torch.testing.assert_close(first["pred"], second["pred"], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(first["target"], second["target"])


def test_hyper_mae_rejects_bad_ratio():
    with pytest.raises(ValueError, match="mask_ratio"):
        HyperMAE(encoder={"embed_dim": 32, "num_heads": 4, "depth": 1}, mask_ratio=1.0)


# ---------------------------------------------------------------- official key layout
def _official_encoder_keys(depth, dim, heads, c_hd, rank, patch, hidden):
    """Key -> shape of GeospatialFM SpatialSpectralLowRankViTEncoder (paper-era commit 3b53776)."""
    cd = c_hd * heads
    sd = dim // cd * heads
    keys = {"cls_token": (1, 1, dim), "spatial_cls_token": (1, 1, dim), "channel_cls_token": (1, 1, dim)}
    for emb in ("optical_patch_embed", "radar_patch_embed"):
        keys |= {f"{emb}.proj.0.weight": (2 * dim, 1, 1, patch, patch), f"{emb}.proj.0.bias": (2 * dim,)}
        keys |= {f"{emb}.proj.2.weight": (dim, 2 * dim, 1, 1, 1), f"{emb}.proj.2.bias": (dim,)}
    keys |= {"norm.weight": (dim,), "norm.bias": (dim,)}
    for i in range(depth):
        p = f"blocks.{i}."
        for name, n in (("norm1", dim), ("spatial_norm", sd), ("channel_norm", cd), ("norm2", dim)):
            keys |= {p + name + ".weight": (n,), p + name + ".bias": (n,)}
        for name, n in (("channel", cd), ("spatial", sd)):
            q = p + f"low_dim_pool.{name}"
            keys |= {q + "_norm.weight": (n,), q + "_norm.bias": (n,)}
            keys |= {q + "_pool.q.weight": (n, n), q + "_pool.q.bias": (n,), q + "_pool.kv.weight": (2 * n, n)}
            keys |= {q + "_pool.kv.bias": (2 * n,), q + "_pool.proj.weight": (n, n), q + "_pool.proj.bias": (n,)}
            keys |= {q + "_linear.weight": (n, dim), q + "_linear.bias": (n,)}
            hd = n // heads
            b = p + f"attn.{name}_branch."
            keys |= {b + "qk.weight": (heads * hd * rank * 2, n), b + "qk.bias": (heads * hd * rank * 2,)}
            keys |= {b + "v.weight": (heads * hd, n), b + "v.bias": (heads * hd,)}
        keys |= {p + "attn.proj.weight": (dim, dim), p + "attn.proj.bias": (dim,)}
        keys |= {p + "ls1.gamma": (dim,), p + "ls2.gamma": (dim,)}
        keys |= {p + "mlp.fc1.weight": (hidden, dim), p + "mlp.fc1.bias": (hidden,)}
        keys |= {p + "mlp.fc2.weight": (dim, hidden), p + "mlp.fc2.bias": (dim,)}
    return keys


@pytest.mark.parametrize("radar", [True, False])
def test_official_encoder_layout_loads_strictly(radar):
    g = torch.Generator().manual_seed(0)
    shapes = _official_encoder_keys(depth=2, dim=48, heads=4, c_hd=2, rank=2, patch=8, hidden=192)
    sd = {"encoder." + k: torch.randn(*s, generator=g) for k, s in shapes.items()}
    sd["decoder.decoder_embed.weight"] = torch.randn(8, 48)  # MAE checkpoints also hold a decoder
    model = LESSViT(patch_size=8, embed_dim=48, depth=2, num_heads=4, channel_embed_dims_per_head=2, rank=2,
                    radar=radar, init_values=1.0)  # fmt: skip
    model.load_state_dict(convert_lessvit_state_dict(sd, radar=radar), strict=True)
    w0, w2 = sd["encoder.optical_patch_embed.proj.0.weight"], sd["encoder.optical_patch_embed.proj.2.weight"]
    b0, b2 = sd["encoder.optical_patch_embed.proj.0.bias"], sd["encoder.optical_patch_embed.proj.2.bias"]
    torch.testing.assert_close(model.optical_patch_embed.proj1.weight, w0[:, :, 0])
    torch.testing.assert_close(model.optical_patch_embed.proj2.weight, w2.reshape(48, 96))
    # the converted 1x1x1 Conv3d equals our Linear: same tokens as the official two-layer Conv3d
    x = torch.randn(1, 2, 16, 16)
    ref = torch.nn.functional.conv3d(x.unsqueeze(1), w0, b0, stride=(1, 8, 8))
    ref = torch.nn.functional.conv3d(ref.relu(), w2, b2)
    ref = ref.permute(0, 2, 3, 4, 1).reshape(1, 2, 4, 48)
    with torch.no_grad():
        torch.testing.assert_close(model.optical_patch_embed(x), ref, rtol=1e-4, atol=1e-4)
        assert torch.isfinite(model(torch.randn(1, 3, 32, 32), WL[:3])).all()
    np.testing.assert_equal(len(model.state_dict()), len(shapes) - (0 if radar else 4))


def test_official_mae_layout_loads_strictly():
    """Full SpatialSpectralMAEViT layout (encoder + LESS decoder) into HyperMAE(radar=True)."""
    g = torch.Generator().manual_seed(0)
    enc = _official_encoder_keys(depth=1, dim=48, heads=4, c_hd=2, rank=2, patch=8, hidden=192)
    dec_blocks = _official_encoder_keys(depth=1, dim=32, heads=4, c_hd=2, rank=2, patch=8, hidden=128)
    shapes = {"encoder." + k: s for k, s in enc.items()}
    shapes |= {"decoder.decoder_" + k: s for k, s in dec_blocks.items() if k.startswith("blocks.")}
    shapes |= {"decoder.decoder_embed.weight": (32, 48), "decoder.decoder_embed.bias": (32,)}
    shapes |= {f"decoder.{t}": (1, 1, 1, 32) for t in ("mask_token", "spatial_mask_token", "channel_mask_token")}
    shapes |= {"decoder.decoder_norm.weight": (32,), "decoder.decoder_norm.bias": (32,)}
    for head in ("optical", "radar"):
        shapes |= {f"decoder.decoder_{head}_pred.weight": (64, 32), f"decoder.decoder_{head}_pred.bias": (64,)}
    sd = {"module." + k: torch.randn(*s, generator=g) * 0.1 for k, s in shapes.items()}
    encoder = dict(patch_size=8, embed_dim=48, depth=1, num_heads=4, channel_embed_dims_per_head=2, rank=2, radar=True)
    model = HyperMAE(encoder=encoder, decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=4)
    model.load_state_dict(convert_hypermae_state_dict(sd), strict=True)
    assert torch.equal(model.decoder.decoder_radar_pred.weight, sd["module.decoder.decoder_radar_pred.weight"])
    assert torch.equal(
        model.encoder.radar_patch_embed.proj1.weight, sd["module.encoder.radar_patch_embed.proj.0.weight"][:, :, 0]
    )
    out = model(torch.randn(1, 4, 32, 32), [443.0, 560.0, 5500.0, 5700.0])  # two optical + two SAR bands
    assert torch.isfinite(out["loss"])
