"""HyperspectralViTs (HyperSegFormer, HyperEfficientViT): shapes, gradients, persistence, channel checks,
official key layouts and a CPU training smoke test on a synthetic methane-plume-like task."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import ChannelMismatchError, InvalidParameterError, ModelCompatibilityError
from hyperplex.common.models import create_model, list_models, load_model
from hyperplex.common.models.efficientvit import HyperEfficientViT
from hyperplex.common.models.hyperspectral_vits_convert import (
    convert_efficientvit_state_dict,
    convert_segformer_state_dict,
    load_hyperspectral_vits_state_dict,
)
from hyperplex.common.models.segformer import HyperSegFormer

PRESETS = ["hypersegformer_test", "hyperefficientvit_test"]


pytestmark = pytest.mark.usefixtures("single_thread")


def _wavelengths(count: int) -> ChannelSet:
    return ChannelSet.from_wavelengths(np.linspace(400.0, 2500.0, count))


def test_presets_registered() -> None:
    names = list_models("hyper*")
    for expected in ("hypersegformer_test", "hypersegformer_b0", "hyperefficientvit_test", "hyperefficientvit_b1"):
        assert expected in names


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("bands", [50, 86, 125])
def test_output_shape_many_bands(preset: str, bands: int) -> None:
    torch.manual_seed(0)
    model = create_model(preset, in_chans=bands, num_classes=2).eval()
    x = torch.randn(2, bands, 32, 32)
    out = model(x, _wavelengths(bands))
    assert out.shape == (2, 2, 32, 32)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("preset", PRESETS)
def test_non_square_odd_size_returns_input_resolution(preset: str) -> None:
    model = create_model(preset).eval()
    out = model(torch.randn(1, 8, 40, 56))
    assert out.shape == (1, 1, 40, 56)


@pytest.mark.parametrize("preset", PRESETS)
def test_forward_features_strides(preset: str) -> None:
    model = create_model(preset).eval()
    feats = model.forward_features(torch.randn(1, 8, 64, 64), _wavelengths(8))
    sizes = [f.shape[-1] for f in feats]
    expected = [32, 16, 8, 4] if preset.startswith("hypersegformer") else [32, 16, 8, 4, 2]
    assert sizes == expected


@pytest.mark.parametrize("preset", PRESETS)
def test_num_tokens_matches_attention_grid(preset: str) -> None:
    model = create_model(preset).eval()
    feats = model.forward_features(torch.randn(1, 8, 50, 70))
    grid = feats[0] if preset.startswith("hypersegformer") else feats[3]
    assert model.num_tokens(8, (50, 70)) == grid.shape[-2] * grid.shape[-1]


def test_segformer_mit_strides_and_no_upscale() -> None:
    model = create_model("hypersegformer_test", strides=(4, 2, 2, 2), upscale=False).eval()
    feats = model.forward_features(torch.randn(1, 8, 64, 64))
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2]
    assert model.decode_head.upscale is None
    assert model(torch.randn(1, 8, 64, 64)).shape == (1, 1, 64, 64)


@pytest.mark.parametrize("preset", PRESETS)
def test_gradients_reach_every_parameter(preset: str) -> None:
    torch.manual_seed(0)
    model = create_model(preset, in_chans=12).train()
    out = model(torch.randn(2, 12, 32, 32), _wavelengths(12))
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("preset", PRESETS)
def test_save_load_round_trip(preset: str, tmp_path) -> None:
    torch.manual_seed(0)
    model = create_model(preset, in_chans=20, num_classes=3)
    model.train()
    model(torch.randn(2, 20, 32, 32))  # move BatchNorm running statistics away from defaults
    model.eval()
    model.set_trained_channels(_wavelengths(20))
    path = tmp_path / "m.safetensors"
    model.save(path)
    loaded = load_model(path)
    assert loaded.preset == preset
    assert type(loaded) is type(model)
    assert loaded.trained_channels == _wavelengths(20)
    x = torch.randn(2, 20, 32, 32)
    assert torch.equal(model(x, _wavelengths(20)), loaded(x, _wavelengths(20)))


@pytest.mark.parametrize("preset", PRESETS)
def test_channel_checks(preset: str) -> None:
    model = create_model(preset, in_chans=10).eval()
    x = torch.randn(1, 10, 32, 32)
    with pytest.raises(ChannelMismatchError, match="built for 10 input channels but got 9"):
        model(torch.randn(1, 9, 32, 32))
    with pytest.raises(ChannelMismatchError):
        model(x, _wavelengths(11))  # channel list and data disagree
    model.set_trained_channels(_wavelengths(10))
    model(x, _wavelengths(10).wavelengths + 0.4)  # within the 1 nm tolerance
    shifted = _wavelengths(10).wavelengths.copy()
    shifted[3] += 15.0
    with pytest.raises(ChannelMismatchError, match="band 3"):
        model(x, shifted.tolist())
    with pytest.raises(ChannelMismatchError, match="wavelengths"):
        model(x, [f"b{i}" for i in range(10)])
    with pytest.raises(InvalidParameterError, match="channel_mask"):
        model(x, None, channel_mask=torch.ones(1, 10, dtype=torch.bool))
    with pytest.raises(ChannelMismatchError):
        model.set_trained_channels(_wavelengths(9))


def test_named_trained_channels_checked() -> None:
    model = create_model("hypersegformer_test", in_chans=3).eval()
    model.set_trained_channels(["R", "G", "B"])
    x = torch.randn(1, 3, 32, 32)
    model(x, ["R", "G", "B"])
    with pytest.raises(ChannelMismatchError, match="channel 0"):
        model(x, ["B", "G", "R"])


def test_load_model_with_incompatible_channels(tmp_path) -> None:
    model = create_model("hyperefficientvit_test")
    model.set_trained_channels(_wavelengths(8))
    model.save(tmp_path / "m.safetensors")
    with pytest.raises(ChannelMismatchError):
        load_model(tmp_path / "m.safetensors", channels=_wavelengths(9))


# --------------------------------------------------------------------------- official key layouts
def _bn(sd: dict, prefix: str, c: int) -> None:
    sd[prefix + "weight"] = torch.rand(c) + 0.5
    sd[prefix + "bias"] = torch.randn(c)
    sd[prefix + "running_mean"] = torch.randn(c) * 0.1
    sd[prefix + "running_var"] = torch.rand(c) + 0.5
    sd[prefix + "num_batches_tracked"] = torch.tensor(7)


def _ln(sd: dict, prefix: str, c: int) -> None:
    sd[prefix + "weight"], sd[prefix + "bias"] = torch.rand(c) + 0.5, torch.randn(c) * 0.1


def _lin(sd: dict, prefix: str, out: int, inp: int, *kernel: int, bias: bool = True) -> None:
    sd[prefix + "weight"] = torch.randn(out, inp, *kernel) * 0.1
    if bias:
        sd[prefix + "bias"] = torch.randn(out) * 0.1


def official_segformer_state_dict(cfg: dict) -> dict[str, torch.Tensor]:
    """HF/HyperspectralViTs SegFormer keys, written from the official module structure (ConvUp variant)."""
    sd: dict[str, torch.Tensor] = {}
    dims, cin = cfg["embed_dims"], cfg["in_chans"]
    for i, (d, depth, sr, k) in enumerate(zip(dims, cfg["depths"], cfg["sr_ratios"], cfg["patch_sizes"])):
        pe = f"segformer.encoder.patch_embeddings.{i}."
        _lin(sd, pe + "proj_1x1.", cin, cin, 1, 1)
        _lin(sd, pe + "proj_kxk.", d, cin, k, k)
        _ln(sd, pe + "layer_norm.", d)
        for j in range(depth):
            b = f"segformer.encoder.block.{i}.{j}."
            _ln(sd, b + "layer_norm_1.", d)
            _ln(sd, b + "layer_norm_2.", d)
            for name in ("query", "key", "value"):
                _lin(sd, b + f"attention.self.{name}.", d, d)
            if sr > 1:
                _lin(sd, b + "attention.self.sr.", d, d, sr, sr)
                _ln(sd, b + "attention.self.layer_norm.", d)
            _lin(sd, b + "attention.output.dense.", d, d)
            _lin(sd, b + "mlp.dense1.", 4 * d, d)
            _lin(sd, b + "mlp.dwconv.dwconv.", 4 * d, 1, 3, 3)
            _lin(sd, b + "mlp.dense2.", d, 4 * d)
        _ln(sd, f"segformer.encoder.layer_norm.{i}.", d)
        cin = d
    dec, half = cfg["decoder_dim"], cfg["decoder_dim"] // 2
    for i, d in enumerate(dims):
        _lin(sd, f"decode_head.linear_c.{i}.proj.", dec, d)
    _lin(sd, "decode_head.linear_fuse.", dec, dec * len(dims), 1, 1, bias=False)
    _bn(sd, "decode_head.batch_norm.", dec)
    _lin(sd, "decode_head.upscale.conv1.", half, dec, 3, 3)
    _bn(sd, "decode_head.upscale.bn1.", half)
    _lin(sd, "decode_head.upscale.conv2.", half, half, 3, 3)
    _bn(sd, "decode_head.upscale.bn2.", half)
    _lin(sd, "decode_head.classifier.", cfg["num_classes"], half, 1, 1)
    return sd


def _reference_hf_attention(sd: dict, prefix: str, x: torch.Tensor, h: int, w: int, heads: int, sr: int):
    """HF SegformerEfficientSelfAttention written out with explicit softmax, from official tensors."""
    b, n, d = x.shape
    kv = x
    if sr > 1:
        grid = x.transpose(1, 2).reshape(b, d, h, w)
        grid = F.conv2d(grid, sd[prefix + "sr.weight"], sd[prefix + "sr.bias"], stride=sr)
        kv = F.layer_norm(grid.flatten(2).transpose(1, 2), (d,), sd[prefix + "layer_norm.weight"],
                          sd[prefix + "layer_norm.bias"])  # fmt: skip

    def split(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(b, -1, heads, d // heads).transpose(1, 2)

    q = split(F.linear(x, sd[prefix + "query.weight"], sd[prefix + "query.bias"]))
    k = split(F.linear(kv, sd[prefix + "key.weight"], sd[prefix + "key.bias"]))
    v = split(F.linear(kv, sd[prefix + "value.weight"], sd[prefix + "value.bias"]))
    attn = torch.softmax(q @ k.transpose(-1, -2) / (d // heads) ** 0.5, dim=-1)
    return (attn @ v).transpose(1, 2).reshape(b, n, d)


def test_official_segformer_layout_loads_strictly() -> None:
    torch.manual_seed(0)
    model = create_model("hypersegformer_test", in_chans=12, num_classes=1).eval()
    cfg = {**model.config}
    sd = official_segformer_state_dict(cfg)
    load_hyperspectral_vits_state_dict(model, {f"network.{k}": v for k, v in sd.items()})
    assert torch.equal(
        model.encoder.patch_embeds[0].spectral.weight, sd["segformer.encoder.patch_embeddings.0.proj_1x1.weight"]
    )
    assert torch.equal(model.decode_head.fuse.weight, sd["decode_head.linear_fuse.weight"])
    # a full layer (stage 0: sr 4) and the decoder against hand-written references on the official tensors
    x = torch.randn(2, 64, cfg["embed_dims"][0])
    ref = _reference_hf_layer(sd, "segformer.encoder.block.0.0.", x, 8, 8, heads=1, sr=4)
    torch.testing.assert_close(model.encoder.stages[0][0](x, 8, 8), ref, rtol=1e-5, atol=1e-5)
    feats = [torch.randn(1, d, 16 // 2**i, 16 // 2**i) for i, d in enumerate(cfg["embed_dims"])]
    torch.testing.assert_close(model.decode_head(feats), _reference_hf_decoder(sd, feats), rtol=1e-4, atol=1e-5)
    assert torch.isfinite(model(torch.randn(1, 12, 32, 32))).all()


def _ref_ln(x: torch.Tensor, sd: dict, p: str) -> torch.Tensor:
    return F.layer_norm(x, x.shape[-1:], sd[p + "weight"], sd[p + "bias"])


def _bn_eval(x: torch.Tensor, sd: dict, p: str) -> torch.Tensor:
    return F.batch_norm(x, sd[p + "running_mean"], sd[p + "running_var"], sd[p + "weight"], sd[p + "bias"])


def _reference_hf_layer(sd: dict, p: str, x: torch.Tensor, h: int, w: int, heads: int, sr: int) -> torch.Tensor:
    """HF SegformerLayer: x + dense(attn(ln1 x)); x + dense2(gelu(dwconv(dense1(ln2 x))))."""
    attn = _reference_hf_attention(sd, p + "attention.self.", _ref_ln(x, sd, p + "layer_norm_1."), h, w, heads, sr)
    x = x + F.linear(attn, sd[p + "attention.output.dense.weight"], sd[p + "attention.output.dense.bias"])
    hidden = F.linear(_ref_ln(x, sd, p + "layer_norm_2."), sd[p + "mlp.dense1.weight"], sd[p + "mlp.dense1.bias"])
    grid = hidden.transpose(1, 2).reshape(x.shape[0], -1, h, w)
    grid = F.conv2d(grid, sd[p + "mlp.dwconv.dwconv.weight"], sd[p + "mlp.dwconv.dwconv.bias"], padding=1,
                    groups=grid.shape[1])  # fmt: skip
    hidden = F.gelu(grid.flatten(2).transpose(1, 2))
    return x + F.linear(hidden, sd[p + "mlp.dense2.weight"], sd[p + "mlp.dense2.bias"])


def _reference_hf_decoder(sd: dict, feats: list[torch.Tensor]) -> torch.Tensor:
    """SegformerDecodeHead_HSI (eval): linear_c, resize, concat in reverse stage order, fuse, BN, ReLU, upscale."""
    size = feats[0].shape[-2:]
    maps = []
    for i, f in enumerate(feats):
        t = F.linear(f.flatten(2).transpose(1, 2), sd[f"decode_head.linear_c.{i}.proj.weight"],
                     sd[f"decode_head.linear_c.{i}.proj.bias"])  # fmt: skip
        t = t.transpose(1, 2).reshape(f.shape[0], -1, *f.shape[-2:])
        maps.append(F.interpolate(t, size=size, mode="bilinear", align_corners=False))
    x = F.conv2d(torch.cat(maps[::-1], dim=1), sd["decode_head.linear_fuse.weight"])
    x = F.relu(_bn_eval(x, sd, "decode_head.batch_norm."))
    x = F.interpolate(x, scale_factor=2, mode="nearest")
    for k in ("1", "2"):
        conv = F.conv2d(
            x, sd[f"decode_head.upscale.conv{k}.weight"], sd[f"decode_head.upscale.conv{k}.bias"], padding=1
        )
        x = _bn_eval(F.relu(conv), sd, f"decode_head.upscale.bn{k}.")
    return F.conv2d(x, sd["decode_head.classifier.weight"], sd["decode_head.classifier.bias"])


def test_official_segformer_layout_mismatch_is_reported() -> None:
    model = create_model("hypersegformer_test", in_chans=12)
    sd = official_segformer_state_dict({**model.config, "in_chans": 13})
    with pytest.raises(ModelCompatibilityError, match=r"proj_1x1|spectral"):
        load_hyperspectral_vits_state_dict(model, sd, source="ckpt.pt")
    sd = official_segformer_state_dict(model.config)
    del sd["decode_head.classifier.bias"]
    with pytest.raises(ModelCompatibilityError, match="missing"):
        model.load_state_dict_checked(convert_segformer_state_dict(sd), strict=True, source="ckpt.pt")


def official_efficientvit_state_dict(cfg: dict) -> dict[str, torch.Tensor]:
    """MIT-Han-lab / HyperspectralViTs EfficientViTSeg keys (conv1x1 on, head_stride 8), from the official structure."""
    sd: dict[str, torch.Tensor] = {}

    def conv_layer(p: str, cin: int, cout: int, k: int, groups: int = 1, bias: bool = False, norm: bool = True):
        _lin(sd, p + "conv.", cout, cin // groups, k, k, bias=bias)
        if norm:
            _bn(sd, p + "norm.", cout)

    def mbconv(p: str, cin: int, cout: int, fewer: bool):
        mid = round(cin * cfg["expand_ratio"])
        conv_layer(p + "inverted_conv.", cin, mid, 1, bias=fewer, norm=not fewer)
        conv_layer(p + "depth_conv.", mid, mid, 3, groups=mid, bias=fewer, norm=not fewer)
        conv_layer(p + "point_conv.", mid, cout, 1)

    def lite_mla(p: str, c: int):
        dim = cfg["head_dim"]
        heads = c // dim
        total = heads * dim
        conv_layer(p + "qkv.", c, 3 * total, 1, norm=False)
        sd[p + "aggreg.0.0.weight"] = torch.randn(3 * total, 1, 5, 5) * 0.1
        sd[p + "aggreg.0.1.weight"] = torch.randn(3 * total, 3 * total // (3 * heads), 1, 1) * 0.1
        conv_layer(p + "proj.", 2 * total, c, 1)

    widths, depths, cin = cfg["widths"], cfg["depths"], cfg["in_chans"]
    _lin(sd, "backbone.input_stem_proj_1x1.", cin, cin, 1, 1)
    conv_layer("backbone.input_stem.op_list.0.", cin, widths[0], 3)
    for k in range(depths[0]):
        conv_layer(f"backbone.input_stem.op_list.{k + 1}.main.depth_conv.", widths[0], widths[0], 3, groups=widths[0])
        conv_layer(f"backbone.input_stem.op_list.{k + 1}.main.point_conv.", widths[0], widths[0], 1)
    c = widths[0]
    for i in range(4):
        w, d = widths[i + 1], depths[i + 1]
        _lin(sd, f"backbone.stages_conv1x1.{i}.", c, c, 1, 1)
        if i < 2:
            for j in range(d):
                mbconv(f"backbone.stages.{i}.op_list.{j}.main.", c if j == 0 else w, w, fewer=False)
        else:
            mbconv(f"backbone.stages.{i}.op_list.0.main.", c, w, fewer=True)
            for j in range(d):
                lite_mla(f"backbone.stages.{i}.op_list.{j + 1}.context_module.main.", w)
                mbconv(f"backbone.stages.{i}.op_list.{j + 1}.local_module.main.", w, w, fewer=True)
        c = w
    hw = cfg["head_width"]
    conv_layer("head.input_ops.0.op_list.0.", widths[4], hw, 1)  # stride 32 -> 8: conv + upsample
    conv_layer("head.input_ops.1.op_list.0.", widths[3], hw, 1)  # stride 16 -> 8
    conv_layer("head.input_ops.2.", widths[2], hw, 1)  # stride 8: conv only
    for k in range(cfg["head_depth"]):
        mbconv(f"head.middle.op_list.{k}.main.", hw, hw, fewer=False)
    for u in range(cfg["upscale_layers"]):
        _lin(sd, f"head.upscale{u + 1}.conv1.", hw // 2, hw, 3, 3)
        _bn(sd, f"head.upscale{u + 1}.bn1.", hw // 2)
        _lin(sd, f"head.upscale{u + 1}.conv2.", hw // 2, hw // 2, 3, 3)
        _bn(sd, f"head.upscale{u + 1}.bn2.", hw // 2)
        hw //= 2
    fe = cfg["final_expand"]
    conv_layer("head.output_ops.0.op_list.0.", hw, hw * fe, 1)
    _lin(sd, "head.output_ops.0.op_list.1.conv.", cfg["num_classes"], hw * fe, 1, 1)
    return sd


@pytest.mark.parametrize("upscale_layers", [1, 2])
def test_official_efficientvit_layout_loads_strictly(upscale_layers: int) -> None:
    torch.manual_seed(0)
    model = create_model("hyperefficientvit_test", in_chans=12, upscale_layers=upscale_layers, num_classes=2).eval()
    sd = official_efficientvit_state_dict(model.config)
    load_hyperspectral_vits_state_dict(model, sd)
    assert torch.equal(model.head.classifier.bias, sd["head.output_ops.0.op_list.1.conv.bias"])
    assert torch.equal(
        model.backbone.stages[2][1].context.aggreg[0][1].weight,
        sd["backbone.stages.2.op_list.1.context_module.main.aggreg.0.1.weight"],
    )
    assert torch.isfinite(model(torch.randn(1, 12, 64, 64))).all()
    feats = [torch.randn(1, c, s, s) for c, s in zip(model.config["widths"][4:1:-1], (2, 4, 8))]
    ours = model.head(feats, (8, 8))
    torch.testing.assert_close(ours, _reference_seg_head(sd, feats, model.config), rtol=1e-4, atol=1e-5)
    # forward feeds the head stage 4, 3, 2 (the official fid_list order) and resizes to the input
    x = torch.randn(1, 12, 64, 64)
    f = model.forward_features(x)
    expected = F.interpolate(model.head([f[4], f[3], f[2]], (8, 8)), size=(64, 64), mode="bilinear")
    torch.testing.assert_close(model(x), expected)


def _reference_seg_head(sd: dict, feats: list[torch.Tensor], cfg: dict) -> torch.Tensor:
    """EfficientViT SegHead (eval) on the official tensors: input_ops.i <-> stage 4, 3, 2; sum; MBConvs; upscale."""

    def conv_layer(x, p, groups=1, act=None):
        w = sd[p + "conv.weight"]
        x = F.conv2d(x, w, sd.get(p + "conv.bias"), padding=w.shape[-1] // 2, groups=groups)
        x = _bn_eval(x, sd, p + "norm.") if p + "norm.weight" in sd else x
        return F.hardswish(x) if act else x

    prefixes = ["head.input_ops.0.op_list.0.", "head.input_ops.1.op_list.0.", "head.input_ops.2."]
    x = sum(F.interpolate(conv_layer(f, p), size=(8, 8), mode="bicubic", align_corners=False) if f.shape[-1] != 8
            else conv_layer(f, p) for f, p in zip(feats, prefixes))  # fmt: skip
    for k in range(cfg["head_depth"]):
        p = f"head.middle.op_list.{k}.main."
        mid = conv_layer(x, p + "inverted_conv.", act=True)
        mid = conv_layer(mid, p + "depth_conv.", groups=mid.shape[1], act=True)
        x = x + conv_layer(mid, p + "point_conv.")
    for u in range(cfg["upscale_layers"]):
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        for k in ("1", "2"):
            conv = F.conv2d(x, sd[f"head.upscale{u + 1}.conv{k}.weight"], sd[f"head.upscale{u + 1}.conv{k}.bias"],
                            padding=1)  # fmt: skip
            x = _bn_eval(F.relu(conv), sd, f"head.upscale{u + 1}.bn{k}.")
    x = conv_layer(x, "head.output_ops.0.op_list.0.", act=True)
    return conv_layer(x, "head.output_ops.0.op_list.1.")


def test_efficientvit_b1_official_key_count() -> None:
    """The paper model's official layout maps one to one onto ours, and every official tensor is loaded."""
    torch.manual_seed(0)
    model = create_model("hyperefficientvit_b1", in_chans=16)
    sd = official_efficientvit_state_dict(model.config)
    load_hyperspectral_vits_state_dict(model, sd)  # strict: every key and shape of the paper model matches
    ours = model.state_dict()
    converted = convert_efficientvit_state_dict(sd, final_expand=True)
    assert len(sd) == len(converted) == len(ours) > 300
    assert all(torch.equal(ours[k], v) for k, v in converted.items())


def test_lite_mla_matches_softmax_free_definition() -> None:
    """LiteMLA's linear attention equals sum_j relu(q_i).relu(k_j) v_j / sum_j relu(q_i).relu(k_j)."""
    torch.manual_seed(0)
    model = HyperEfficientViT(in_chans=4, widths=(8, 8, 16, 16, 16), depths=(1, 1, 1, 1, 1), head_dim=8)
    mla = model.backbone.stages[3][1].context
    qkv = torch.randn(1, 3 * 8, 4, 5)  # one head
    out = mla.linear_attention(qkv)
    q, k, v = (qkv[0, i * 8 : (i + 1) * 8].reshape(8, -1).T for i in range(3))
    sim = F.relu(q) @ F.relu(k).T
    ref = (sim @ v) / (sim.sum(dim=1, keepdim=True) + 1e-15)
    torch.testing.assert_close(out[0].reshape(8, -1).T, ref, rtol=1e-4, atol=1e-5)


def test_invalid_configs() -> None:
    with pytest.raises(InvalidParameterError):
        HyperSegFormer(depths=(1, 1, 1))
    with pytest.raises(InvalidParameterError):
        HyperSegFormer(spectral_conv="some")
    with pytest.raises(InvalidParameterError):
        HyperEfficientViT(upscale_layers=3)


# --------------------------------------------------------------------------- training smoke test
def _ellipse(rng: np.random.Generator, size: int) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.uniform(8, size - 8, 2)
    a, b, t = rng.uniform(3, 7), rng.uniform(2, 4), rng.uniform(0, np.pi)
    u = (xx - cx) * np.cos(t) + (yy - cy) * np.sin(t)
    v = -(xx - cx) * np.sin(t) + (yy - cy) * np.cos(t)
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def plume_batch(rng: np.random.Generator, n: int, bands: int, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Scenes with spatially varying albedo and random smooth spectra; inside an elliptical plume the
    CH4-like absorption bands near 1650 and 2300 nm deepen by 30 %. Returns band-standardised cubes
    (N, bands, size, size) and the known plume masks (N, 1, size, size)."""
    wl = np.linspace(400.0, 2500.0, bands)
    absorption = np.exp(-0.5 * ((wl[:, None] - np.array([1650.0, 2300.0])) / 40.0) ** 2).sum(axis=1)
    basis = np.stack([np.ones(bands), wl / 2500.0, (wl / 2500.0) ** 2])  # (3, bands)
    cubes, masks = [], []
    for _ in range(n):
        albedo = 1.0 + 0.3 * _smooth_field(rng, size)
        spectrum = basis.T @ (np.array([1.0, 0.0, 0.0]) + 0.3 * rng.standard_normal(3))
        mask = _ellipse(rng, size)
        cube = spectrum[:, None, None] * albedo[None] * (1.0 - 0.3 * absorption[:, None, None] * mask[None])
        cubes.append(cube + 0.02 * rng.standard_normal(cube.shape))
        masks.append(mask)
    data = np.stack(cubes)
    data = (data - data.mean(axis=(0, 2, 3), keepdims=True)) / data.std(axis=(0, 2, 3), keepdims=True)
    return torch.tensor(data, dtype=torch.float32), torch.tensor(np.stack(masks)[:, None], dtype=torch.float32)


def _smooth_field(rng: np.random.Generator, size: int) -> np.ndarray:
    coarse = torch.tensor(rng.standard_normal((1, 1, 4, 4)), dtype=torch.float32)
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)[0, 0].numpy()


@pytest.mark.parametrize("preset", PRESETS)
def test_training_lowers_loss_on_synthetic_plumes(preset: str) -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    bands = 50
    x, y = plume_batch(rng, 8, bands)
    model = create_model(preset, in_chans=bands)
    channels = _wavelengths(bands)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    pos_weight = (1 - y.mean()) / y.mean()

    def loss_fn() -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(model(x, channels), y, pos_weight=pos_weight)

    model.train()  # BatchNorm on batch statistics throughout: the smoke test checks optimisation only
    with torch.no_grad():
        first = loss_fn().item()
    for _ in range(80):
        opt.zero_grad()
        loss_fn().backward()
        opt.step()
    with torch.no_grad():
        final = loss_fn().item()
        scores = model(x, channels).flatten()
    k = int(y.sum())
    precision_at_k = y.flatten()[scores.topk(k).indices].mean().item()  # chance level: y.mean() ~ 0.04
    assert final < 0.5 * first, (first, final)
    assert precision_at_k > 0.3, precision_at_k  # > 7x chance


def test_plain_segformer_b0_has_the_published_parameter_count() -> None:
    """With the HyperspectralViTs switches off, our MiT-b0 SegFormer is the original architecture:
    3,752,694 parameters for ADE20K (150 classes, HF ``nvidia/segformer-b0-finetuned-ade-512-512``),
    3,319,392 in the encoder (``nvidia/mit-b0``)."""
    with torch.device("meta"):
        model = HyperSegFormer(in_chans=3, num_classes=150, strides=(4, 2, 2, 2), spectral_conv="none", upscale=False)
    assert sum(p.numel() for p in model.parameters()) == 3_752_694
    assert sum(p.numel() for p in model.encoder.parameters()) == 3_319_392


@pytest.mark.parametrize(("preset", "millions"), [("hyperefficientvit_b0", 0.7), ("hyperefficientvit_b1", 4.8)])
def test_plain_efficientvit_seg_matches_published_size(preset: str, millions: float) -> None:
    """Switches off, 3 bands, 19 classes: the EfficientViT Cityscapes models (README: B0 0.7M, B1 4.8M)."""
    with torch.device("meta"):
        model = create_model(preset, in_chans=3, num_classes=19, spectral_conv=False, upscale_layers=0)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == millions
