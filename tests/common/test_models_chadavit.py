"""ChAda-ViT: padded vs unpadded CLS, slot/vocabulary embeddings, official key layout."""

import pytest
import torch
import torch.nn.functional as F

from hyperplex.common.errors import ChannelMismatchError
from hyperplex.common.models import ChAdaViT, create_model
from hyperplex.common.models.chada_vit import convert_chadavit_state_dict, pad_channel_batch, unstack_channels


def _model(**kw):
    torch.manual_seed(0)
    return create_model("chadavit_test", **kw).eval()


def test_padded_equals_unpadded_cls():
    model = _model()
    images = [torch.randn(c, 32, 32) for c in (1, 5, 3)]
    x, mask = pad_channel_batch(images)
    assert x.shape == (3, 5, 32, 32) and mask.sum(1).tolist() == [1, 5, 3]
    with torch.no_grad():
        padded = model(x, [f"s{i}" for i in range(5)], channel_mask=mask)
        alone = torch.cat([model(im[None], [f"s{i}" for i in range(im.shape[0])]) for im in images])
        # garbage in padded slots changes nothing
        x_noise = x.clone()
        x_noise[~mask] = 7.0
        noisy = model(x_noise, [f"s{i}" for i in range(5)], channel_mask=mask)
    torch.testing.assert_close(padded, alone, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(noisy, alone, rtol=1e-5, atol=1e-5)


def test_slot_embedding_order_matters_and_limit():
    model = _model()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        a = model(x, ["a", "b", "c"])
        b = model(x[:, [2, 0, 1]], ["c", "a", "b"])
    assert (a - b).abs().max() > 1e-4  # slots, not names, identify channels (official behaviour)
    with pytest.raises(ChannelMismatchError, match="slots"):
        model(torch.randn(1, 17, 32, 32), [f"c{i}" for i in range(17)])


def test_vocabulary_embedding_follows_names():
    model = _model(channel_vocab=["DAPI", "CD3", "CD8", "PanCK"])
    x = torch.randn(1, 3, 32, 32)
    perm = [2, 0, 1]
    with torch.no_grad():
        a = model(x, ["DAPI", "CD3", "CD8"])
        b = model(x[:, perm], ["CD8", "DAPI", "CD3"])
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)  # permutation with names: same CLS
    with pytest.raises(ChannelMismatchError):
        model(x, ["DAPI", "CD3", "Ki67"])


def test_unstack_official_input_format():
    flat = torch.randn(6, 1, 8, 8)
    x, mask = unstack_channels(flat, [2, 4])
    assert x.shape == (2, 4, 8, 8)
    torch.testing.assert_close(x[1], flat[2:, 0])
    assert mask.tolist() == [[True, True, False, False], [True] * 4]


# ---------------------------------------------------------------- official key layout
def _official_state_dict(depth, dim, slots, patch, grid, ffn, seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g) * 0.1

    sd = {
        "cls_token": r(1, 1, dim),
        "channel_token": r(1, slots, 1, dim),
        "pos_embed": r(1, 1, grid * grid + 1, dim),
        "token_learner.proj.weight": r(dim, 1, patch, patch),
        "token_learner.proj.bias": r(dim),
        "norm.weight": 1 + r(dim),
        "norm.bias": r(dim),
    }
    for i in range(depth):
        p = f"blocks.{i}."
        sd.update({p + "self_attn.in_proj_weight": r(3 * dim, dim), p + "self_attn.in_proj_bias": r(3 * dim)})
        sd.update({p + "self_attn.out_proj.weight": r(dim, dim), p + "self_attn.out_proj.bias": r(dim)})
        sd.update({p + "linear1.weight": r(ffn, dim), p + "linear1.bias": r(ffn)})
        sd.update({p + "linear2.weight": r(dim, ffn), p + "linear2.bias": r(dim)})
        for n in ("norm1", "norm2"):
            sd.update({p + n + ".weight": 1 + r(dim), p + n + ".bias": r(dim)})
    return sd


def _official_forward(sd, x_flat, counts, depth, heads, slots):
    """The official forward from its equations: stacked input, zero padding to all slots,
    ``channel_mask = all(token == 0)``, torch MultiheadAttention, post-norm with norm1 used twice."""
    tokens = F.conv2d(x_flat, sd["token_learner.proj.weight"], sd["token_learner.proj.bias"], stride=8)
    tokens = tokens.flatten(2).transpose(1, 2)  # (sum C, N, D)
    chunks = torch.split(tokens, counts)
    padded = torch.stack([torch.cat([c, c.new_zeros(slots - c.shape[0], *c.shape[1:])]) for c in chunks])
    b, _, n, d = padded.shape
    pad_mask = torch.all(padded.reshape(b, -1, d) == 0.0, dim=-1)
    padded = padded + sd["pos_embed"][:, :, 1:] + sd["channel_token"]
    cls = sd["cls_token"].expand(b, -1, -1) + sd["pos_embed"][:, :, 0]
    t = torch.cat([cls, padded.reshape(b, -1, d)], dim=1)
    pad_mask = torch.cat([torch.zeros(b, 1, dtype=torch.bool), pad_mask], dim=1)
    for i in range(depth):
        p = f"blocks.{i}."
        mha = torch.nn.MultiheadAttention(d, heads, batch_first=True)
        mha.load_state_dict({k[len(p + "self_attn.") :]: v for k, v in sd.items() if k.startswith(p + "self_attn.")})

        def ln(z, name, p=p):
            return F.layer_norm(z, (d,), sd[p + name + ".weight"], sd[p + name + ".bias"])

        h = ln(t, "norm1")
        t = ln(t + mha(h, h, h, key_padding_mask=pad_mask, need_weights=False)[0], "norm1")
        ff = F.linear(F.relu(F.linear(t, sd[p + "linear1.weight"], sd[p + "linear1.bias"])), sd[p + "linear2.weight"])
        t = ln(t + ff + sd[p + "linear2.bias"], "norm2")
    return F.layer_norm(t, (d,), sd["norm.weight"], sd["norm.bias"], eps=1e-6)[:, 0]


@pytest.mark.parametrize("heads", [2, 4])
def test_official_layout_loads_strictly_and_matches_reference(heads):
    sd = _official_state_dict(depth=2, dim=32, slots=6, patch=8, grid=4, ffn=64)
    sd_prefixed = {"backbone." + k: v for k, v in sd.items()}
    model = ChAdaViT(max_channels=6, img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=heads, ffn_dim=64)
    model.load_state_dict(convert_chadavit_state_dict(sd_prefixed), strict=True)
    counts = [2, 5, 1]
    x_flat = torch.randn(sum(counts), 1, 32, 32)
    x, mask = unstack_channels(x_flat, counts)
    with torch.no_grad():
        ours = model.eval()(x, [f"s{i}" for i in range(5)], channel_mask=mask)
        ref = _official_forward(sd, x_flat, counts, 2, heads, 6)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)


def test_feature_map_padded_equals_unpadded():
    model = _model()
    images = [torch.randn(2, 32, 64), torch.randn(4, 32, 64)]
    x, mask = pad_channel_batch(images)
    with torch.no_grad():
        fmap = model.feature_map(x, [f"s{i}" for i in range(4)], channel_mask=mask)
        alone = model.feature_map(images[0][None], ["s0", "s1"])
    assert fmap.shape == (2, 32, 4, 8)
    torch.testing.assert_close(fmap[:1], alone, rtol=1e-5, atol=1e-5)


def test_sample_without_channels_stays_finite():
    model = _model()
    x = torch.randn(2, 3, 32, 32)
    mask = torch.tensor([[True, True, True], [False, False, False]])
    with torch.no_grad():
        out = model(x, ["a", "b", "c"], channel_mask=mask)
    assert torch.isfinite(out).all()  # the CLS token is never masked, so softmax rows never empty
