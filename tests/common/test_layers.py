"""Building blocks: fused attention equals the attention equation, embeddings, patching."""

import math

import pytest
import torch

from hyperplex.common.layers import (
    Attention,
    Block,
    PatchEmbed,
    PatchEmbedPerChannel,
    key_padding_to_attn_mask,
    resample_pos_embed,
    sincos_1d,
    sincos_2d,
)


def _reference_attention(attn, x, allowed=None):
    q, k, v = attn.split_heads(x)
    logits = q @ k.transpose(-2, -1) / math.sqrt(attn.head_dim)
    if allowed is not None:
        logits = logits.masked_fill(~allowed, float("-inf"))
    out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(x.shape)
    return attn.proj(out)


def test_attention_matches_equation_with_padding_mask():
    torch.manual_seed(0)
    attn = Attention(16, num_heads=4).eval()
    x = torch.randn(2, 7, 16)
    pad = torch.zeros(2, 7, dtype=torch.bool)
    pad[1, 4:] = True
    mask = key_padding_to_attn_mask(pad)
    torch.testing.assert_close(attn(x, mask), _reference_attention(attn, x, mask), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(attn(x), _reference_attention(attn, x), rtol=1e-5, atol=1e-5)
    # padded keys are ignored: changing them leaves the unpadded rows unchanged
    y = x.clone()
    y[1, 4:] = 100.0
    torch.testing.assert_close(attn(y, mask)[1, :4], attn(x, mask)[1, :4])


def test_attention_rejects_bad_heads():
    with pytest.raises(ValueError, match="must divide"):
        Attention(10, num_heads=3)


def test_block_gradients_and_shape():
    block = Block(16, 2, init_values=1e-5, drop_path=0.1)
    x = torch.randn(3, 5, 16, requires_grad=True)
    out = block(x)
    assert out.shape == x.shape
    out.sum().backward()
    assert all(p.grad is not None for p in block.parameters())


def test_sincos_1d_equation():
    pos = torch.tensor([0.0, 3.5, 700.0])
    emb = sincos_1d(pos, 8)
    omega = 1.0 / 10000 ** (torch.arange(4, dtype=torch.float64) / 4)
    expected = torch.cat([torch.sin(pos[:, None].double() * omega), torch.cos(pos[:, None].double() * omega)], -1)
    torch.testing.assert_close(emb, expected.float())
    with pytest.raises(ValueError):
        sincos_1d(pos, 7)


def test_sincos_2d_layout():
    emb = sincos_2d(2, 3, 8, spacing=10.0)
    assert emb.shape == (6, 8)
    # token 4 is row 1, column 1; first half encodes the column, second half the row
    torch.testing.assert_close(emb[4, :4], sincos_1d(torch.tensor(10.0), 4))
    torch.testing.assert_close(emb[5, :4], sincos_1d(torch.tensor(20.0), 4))
    torch.testing.assert_close(emb[5, 4:], sincos_1d(torch.tensor(10.0), 4))


def test_resample_pos_embed_identity_and_shape():
    pe = torch.randn(1, 1 + 16, 8)
    assert resample_pos_embed(pe, (4, 4)) is pe
    out = resample_pos_embed(pe, (6, 2))
    assert out.shape == (1, 13, 8)
    torch.testing.assert_close(out[:, :1], pe[:, :1])
    # a constant field stays constant under bicubic resampling
    const = torch.ones(1, 17, 8)
    torch.testing.assert_close(resample_pos_embed(const, (7, 7)), torch.ones(1, 50, 8))


def test_patch_embeddings():
    x = torch.randn(2, 5, 8, 12)
    per_channel = PatchEmbedPerChannel(6, patch_size=4)
    tokens = per_channel(x)
    assert tokens.shape == (2, 5, 6, 6)
    # channel subset gives exactly those channels' tokens
    torch.testing.assert_close(per_channel(x[:, [3, 1]]), tokens[:, [3, 1]])
    assert PatchEmbed(5, 6, patch_size=4)(x).shape == (2, 6, 6)
    with pytest.raises(ValueError, match="multiple of the patch size"):
        per_channel(torch.randn(1, 1, 9, 8))
