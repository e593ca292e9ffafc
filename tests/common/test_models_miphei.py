"""MIPHEI (H&E -> mIF markers): shapes, LoRA, freezing, persistence, channel checks, official key
layout against hand-written reference equations, timm encoder path, tiled inference and a CPU
training smoke test."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import (
    ChannelMismatchError,
    InvalidParameterError,
    MissingDependencyError,
    ModelCompatibilityError,
)
from hyperplex.common.layers.lora import LoRAQkv
from hyperplex.common.models import create_model, list_models, load_model, predict_markers
from hyperplex.common.models.miphei import MIPHEI, ORION_MARKERS
from hyperplex.common.models.miphei_convert import load_miphei_state_dict
from hyperplex.common.models.miphei_vit import RegisterViT

pytestmark = pytest.mark.usefixtures("single_thread")


def _randomize_lora(model: torch.nn.Module) -> None:
    """LoRA's ``up`` starts at zero (no-op, no gradient to ``down``); give it values to exercise the path."""
    for module in model.modules():
        if isinstance(module, LoRAQkv):
            torch.nn.init.normal_(module.lora_q.up, std=0.05)
            torch.nn.init.normal_(module.lora_v.up, std=0.05)


def test_presets_registered() -> None:
    assert {"miphei_test", "miphei_vits14", "miphei_vitg14"} <= set(list_models("miphei_*"))


@pytest.mark.parametrize("markers", [("Hoechst",), ("Hoechst", "CD3e", "Pan-CK"), ORION_MARKERS])
@pytest.mark.parametrize("size", [(32, 32), (64, 48)])
def test_output_shape_and_range(markers: tuple[str, ...], size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    model = create_model("miphei_test", markers=markers).eval()
    out = model(torch.randn(2, 3, *size), ["R", "G", "B"])
    assert out.shape == (2, len(markers), *size)
    assert torch.isfinite(out).all() and out.abs().max() <= 1.0  # tanh heads
    assert model.output_channels == ChannelSet.from_names(markers)


def test_encoder_features_on_stride_16_grid() -> None:
    model = create_model("miphei_test").eval()
    feats = model.forward_features(torch.randn(1, 3, 64, 96))
    assert feats.shape == (1, 32, 4, 6)  # patch-14 grid (4x6) resized to the /16 grid
    assert model.num_tokens(3, 256) == 5 + 18 * 18


def test_freezing_and_gradients() -> None:
    torch.manual_seed(0)
    model = create_model("miphei_test").train()
    _randomize_lora(model)
    model(torch.randn(2, 3, 32, 32)).square().mean().backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    encoder_trainable = {n for n in trainable if n.startswith("encoder.")}
    assert encoder_trainable and all(".lora_" in n for n in encoder_trainable)  # only LoRA in the encoder
    assert all(not p.requires_grad for n, p in model.encoder.named_parameters() if ".lora_" not in n)
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert not missing


def test_gradients_reach_every_parameter_unfrozen() -> None:
    torch.manual_seed(0)
    model = create_model("miphei_test", freeze_encoder=False).train()
    _randomize_lora(model)
    model(torch.randn(2, 3, 32, 32)).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_lora_starts_as_identity_and_adds_low_rank_update() -> None:
    torch.manual_seed(0)
    with_lora = create_model("miphei_test").eval()
    plain = create_model("miphei_test", lora_rank=0).eval()
    sd = {k.replace(".qkv.base.", ".qkv."): v for k, v in with_lora.state_dict().items() if ".lora_" not in k}
    plain.load_state_dict(sd, strict=True)
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(with_lora(x), plain(x))
    qkv = with_lora.encoder.vit.blocks[0].attn.qkv
    _randomize_lora(with_lora)
    tokens = torch.randn(2, 5, 32)
    base = qkv.base(tokens)
    dq = tokens @ qkv.lora_q.down @ qkv.lora_q.up
    dv = tokens @ qkv.lora_v.down @ qkv.lora_v.up
    torch.testing.assert_close(qkv(tokens), base + torch.cat([dq, torch.zeros_like(dq), dv], dim=-1))


def test_save_load_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    model = create_model("miphei_test", markers=("CD3e", "CD20", "Ki67"))
    _randomize_lora(model)
    model.train()
    model(torch.randn(2, 3, 32, 32))  # update BatchNorm statistics
    model.eval()
    model.set_trained_channels(["R", "G", "B"])
    model.save(tmp_path / "miphei.safetensors")
    loaded = load_model(tmp_path / "miphei.safetensors")
    assert isinstance(loaded, MIPHEI) and loaded.preset == "miphei_test"
    assert loaded.output_channels == ChannelSet.from_names(["CD3e", "CD20", "Ki67"])
    assert loaded.trained_channels == ChannelSet.from_names(["R", "G", "B"])
    assert not loaded.encoder.vit.pos_embed.requires_grad  # freezing is part of the config
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(model(x, ["R", "G", "B"]), loaded(x, ["R", "G", "B"]))


def test_channel_and_size_checks() -> None:
    model = create_model("miphei_test").eval()
    with pytest.raises(ChannelMismatchError, match="built for 3 input channels but got 4"):
        model(torch.randn(1, 4, 32, 32))
    with pytest.raises(ChannelMismatchError):
        model(torch.randn(1, 3, 32, 32), ["R", "G"])
    with pytest.raises(InvalidParameterError, match="multiples of 16"):
        model(torch.randn(1, 3, 40, 32))
    model.set_trained_channels(["R", "G", "B"])
    with pytest.raises(ChannelMismatchError, match="channel 0"):
        model(torch.randn(1, 3, 32, 32), ["B", "G", "R"])
    with pytest.raises(InvalidParameterError):
        MIPHEI(markers=())
    with pytest.raises(InvalidParameterError):
        MIPHEI(encoder="resnet50")


# --------------------------------------------------------------------------- official key layout
def _bn(sd: dict, prefix: str, c: int) -> None:
    sd[prefix + "weight"] = torch.rand(c) + 0.5
    sd[prefix + "bias"] = torch.randn(c) * 0.1
    sd[prefix + "running_mean"] = torch.randn(c) * 0.1
    sd[prefix + "running_var"] = torch.rand(c) + 0.5
    sd[prefix + "num_batches_tracked"] = torch.tensor(3)


def official_timm_vit(cfg: dict) -> dict[str, torch.Tensor]:
    """timm ``vit_*_reg4_dinov2`` keys (no_embed_class: pos_embed covers patches only)."""
    d, p, r = cfg["embed_dim"], cfg["patch_size"], cfg["reg_tokens"]
    n = (cfg["img_size"] // p) ** 2
    h = int(d * cfg["mlp_ratio"])
    sd = {
        "cls_token": torch.randn(1, 1, d), "reg_token": torch.randn(1, r, d), "pos_embed": torch.randn(1, n, d) * 0.1,
        "patch_embed.proj.weight": torch.randn(d, 3, p, p) * 0.05, "patch_embed.proj.bias": torch.randn(d) * 0.1,
        "norm.weight": torch.rand(d) + 0.5, "norm.bias": torch.randn(d) * 0.1,
    }  # fmt: skip
    for i in range(cfg["depth"]):
        b = f"blocks.{i}."
        for name, shape in [("norm1", (d,)), ("norm2", (d,)), ("attn.proj", (d, d)), ("mlp.fc1", (h, d)),
                            ("mlp.fc2", (d, h)), ("attn.qkv", (3 * d, d))]:  # fmt: skip
            sd[b + name + ".weight"] = torch.randn(*shape) * 0.1 + (1.0 if len(shape) == 1 else 0.0)
            sd[b + name + ".bias"] = torch.randn(shape[0]) * 0.1
        sd[b + "ls1.gamma"] = torch.rand(d) * 0.5
        sd[b + "ls2.gamma"] = torch.rand(d) * 0.5
    return sd


def official_miphei_state_dict(cfg: dict, *, pruned: bool = False) -> dict[str, torch.Tensor]:
    """MIPHEI-ViT generator keys (ViTMatte + QkvWithLoRA + Detail_Capture), written from the official modules."""
    d, rank = cfg["embed_dim"], cfg["lora_rank"]
    sd = {}
    for key, value in official_timm_vit(cfg).items():
        if pruned:
            continue
        sd["encoder.vit." + key.replace(".attn.qkv.", ".attn.qkv.qkv.")] = value
    for i in range(cfg["depth"]):
        for which in ("q", "v"):
            sd[f"encoder.vit.blocks.{i}.attn.qkv.lora_{which}.A"] = torch.randn(d, rank) * 0.1
            sd[f"encoder.vit.blocks.{i}.attn.qkv.lora_{which}.B"] = torch.randn(rank, d) * 0.1
    stream = [3, *cfg["convstream_out"]]
    for k in range(len(cfg["convstream_out"])):
        sd[f"decoder.convstream.convs.{k}.conv.weight"] = torch.randn(stream[k + 1], stream[k], 3, 3) * 0.1
        _bn(sd, f"decoder.convstream.convs.{k}.bn.", stream[k + 1])
    fus = [d, *cfg["fusion_out"]]
    for k in range(len(cfg["fusion_out"])):
        sd[f"decoder.fusion_blks.{k}.conv.conv.weight"] = torch.randn(fus[k + 1], fus[k] + stream[-(k + 1)], 3, 3) * 0.1
        _bn(sd, f"decoder.fusion_blks.{k}.conv.bn.", fus[k + 1])
    c = fus[-1]
    for m in range(len(cfg["markers"])):
        h = f"decoder.segmentation_head_{m}."
        sd[h + "0.psi.0.weight"], sd[h + "0.psi.0.bias"] = torch.randn(c // 2, c, 1, 1) * 0.3, torch.randn(c // 2) * 0.1
        _bn(sd, h + "0.psi.1.", c // 2)
        sd[h + "0.psi.3.weight"], sd[h + "0.psi.3.bias"] = torch.randn(1, c // 2, 1, 1) * 0.3, torch.randn(1) * 0.1
        sd[h + "1.weight"], sd[h + "1.bias"] = torch.randn(1, c, 3, 3) * 0.1, torch.randn(1) * 0.1
    return {f"generator.{k}": v for k, v in sd.items()}


def _bn_eval(x: torch.Tensor, sd: dict, p: str) -> torch.Tensor:
    return F.batch_norm(x, sd[p + "running_mean"], sd[p + "running_var"], sd[p + "weight"], sd[p + "bias"], eps=1e-5)


def reference_decoder(sd: dict, features: torch.Tensor, image: torch.Tensor, n_stream: int, n_markers: int):
    """Official Detail_Capture forward, written with functional ops on the official tensors."""
    details = [image]
    for k in range(n_stream):
        p = f"generator.decoder.convstream.convs.{k}."
        details.append(
            F.relu(_bn_eval(F.conv2d(details[-1], sd[p + "conv.weight"], stride=2, padding=1), sd, p + "bn."))
        )
    x = features
    for k in range(n_stream + 1):
        p = f"generator.decoder.fusion_blks.{k}.conv."
        up = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = torch.cat([details[n_stream - k], up], dim=1)  # D first, then upsampled features
        x = F.relu(_bn_eval(F.conv2d(x, sd[p + "conv.weight"], padding=1), sd, p + "bn."))
    outs = []
    for m in range(n_markers):
        p = f"generator.decoder.segmentation_head_{m}."
        g = F.relu(_bn_eval(F.conv2d(x, sd[p + "0.psi.0.weight"], sd[p + "0.psi.0.bias"]), sd, p + "0.psi.1."))
        g = torch.sigmoid(F.conv2d(g, sd[p + "0.psi.3.weight"], sd[p + "0.psi.3.bias"]))
        outs.append(torch.tanh(F.conv2d(x * g, sd[p + "1.weight"], sd[p + "1.bias"], padding=1)))
    return torch.cat(outs, dim=1)


def test_official_layout_loads_strictly_and_matches_reference() -> None:
    torch.manual_seed(0)
    model = create_model("miphei_test").eval()
    cfg = model.config
    sd = official_miphei_state_dict(cfg)
    load_miphei_state_dict(model, sd)
    qkv = model.encoder.vit.blocks[1].attn.qkv
    assert torch.equal(qkv.base.weight, sd["generator.encoder.vit.blocks.1.attn.qkv.qkv.weight"])
    # LoRA equation of QkvWithLoRA on the official tensors
    x = torch.randn(2, 7, cfg["embed_dim"])
    pre = "generator.encoder.vit.blocks.1.attn.qkv."
    ref = F.linear(x, sd[pre + "qkv.weight"], sd[pre + "qkv.bias"])
    d = cfg["embed_dim"]
    ref[..., :d] += x @ sd[pre + "lora_q.A"] @ sd[pre + "lora_q.B"]
    ref[..., -d:] += x @ sd[pre + "lora_v.A"] @ sd[pre + "lora_v.B"]
    torch.testing.assert_close(qkv(x), ref)
    # the whole decoder against the reference forward
    image = torch.randn(1, 3, 32, 48)
    feats = model.forward_features(image)
    ref_out = reference_decoder(sd, feats, image, len(cfg["convstream_out"]), len(cfg["markers"]))
    torch.testing.assert_close(model.decoder(feats, image), ref_out, rtol=1e-5, atol=1e-5)


def test_pruned_checkpoint_with_separate_encoder_weights() -> None:
    torch.manual_seed(0)
    model = create_model("miphei_test").eval()
    pruned = official_miphei_state_dict(model.config, pruned=True)
    with pytest.raises(ModelCompatibilityError, match="missing"):
        load_miphei_state_dict(model, pruned, source="model.safetensors")
    timm_224 = official_timm_vit({**model.config, "img_size": 56})  # stored for a 4x4 grid, model has 2x2
    load_miphei_state_dict(model, pruned, encoder_state_dict=timm_224)
    assert model.encoder.vit.pos_embed.shape == (1, 4, 32)
    assert torch.equal(model.encoder.vit.cls_token, timm_224["cls_token"])


# --------------------------------------------------------------------------- timm encoder path
def test_timm_encoder_requires_optional_dependency(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm -> ImportError
    with pytest.raises(MissingDependencyError, match=r"hyperplex\[timm\]"):
        MIPHEI(encoder="timm:vit_small_patch14_reg4_dinov2")


def test_timm_encoder_path_with_a_timm_like_vit(monkeypatch) -> None:
    calls = {}

    def create_model_stub(name: str, **kwargs):
        calls[name] = kwargs
        return RegisterViT(kwargs["img_size"], 14, 3, embed_dim=24, depth=1, num_heads=2)

    monkeypatch.setitem(sys.modules, "timm", types.SimpleNamespace(create_model=create_model_stub))
    model = MIPHEI(markers=["Hoechst"], encoder="timm:vit_small_patch14_reg4_dinov2", img_size=32,
                   convstream_out=(8, 8, 8), fusion_out=(8, 8, 8, 8))  # fmt: skip
    kwargs = calls["vit_small_patch14_reg4_dinov2"]
    assert kwargs["pretrained"] is False and kwargs["num_classes"] == 0 and kwargs["global_pool"] == ""
    assert isinstance(model.encoder.vit.blocks[0].attn.qkv, LoRAQkv)
    assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 1, 32, 32)
    assert model.fixed_input_size == 32
    markers, _ = predict_markers(model, np.zeros((3, 40, 20), np.uint8), tile_size=32, overlap=8)
    assert markers.shape == (1, 40, 20)  # edge tiles padded to the encoder's fixed 32x32 input
    with pytest.raises(InvalidParameterError, match="tile_size=32"):
        predict_markers(model, np.zeros((3, 64, 64), np.uint8), tile_size=64)


# --------------------------------------------------------------------------- tiled inference
def test_predict_markers_whole_tile_equals_direct_forward() -> None:
    torch.manual_seed(0)
    model = create_model("miphei_test").eval()
    rgb = np.random.default_rng(0).integers(0, 256, (3, 64, 48), dtype=np.uint8)
    markers, channels = predict_markers(model, rgb, tile_size=64, overlap=0)
    direct = model(model.normalize(torch.tensor(rgb, dtype=torch.float32)[None] / 255.0))[0].detach().numpy()
    assert channels == model.output_channels
    np.testing.assert_allclose(markers, direct, rtol=1e-5, atol=1e-6)


def test_predict_markers_tiling_scaling_and_axes() -> None:
    torch.manual_seed(0)
    model = create_model("miphei_test").eval()
    rgb = np.random.default_rng(1).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    tiled, _ = predict_markers(model, rgb, tile_size=32, overlap=16)
    assert tiled.shape == (4, 48, 48) and tiled.dtype == np.float32 and np.isfinite(tiled).all()
    # rows/cols 0..15 are covered by the first tile only: equal to that tile's own prediction
    first = model(model.normalize(torch.tensor(rgb[:, :32, :32], dtype=torch.float32)[None] / 255.0))
    np.testing.assert_allclose(tiled[:, :16, :16], first[0, :, :16, :16].detach().numpy(), rtol=1e-5, atol=1e-6)
    as_float, _ = predict_markers(model, rgb.astype(np.float32) / 255.0, tile_size=32, overlap=16)
    np.testing.assert_allclose(as_float, tiled, rtol=1e-5, atol=1e-6)
    channels_last, _ = predict_markers(model, np.moveaxis(rgb, 0, -1), tile_size=32, overlap=16, channel_axis=-1)
    np.testing.assert_array_equal(channels_last, tiled)
    import dask.array as da

    lazy, _ = predict_markers(model, da.from_array(rgb, chunks=(3, 16, 16)), tile_size=32, overlap=16)
    np.testing.assert_array_equal(lazy, tiled)
    small, _ = predict_markers(model, rgb[:, :20, :27], tile_size=32, overlap=8)  # padded to 32 inside
    assert small.shape == (4, 20, 27) and np.isfinite(small).all()
    assert model.training is False


def test_predict_markers_errors() -> None:
    model = create_model("miphei_test")
    with pytest.raises(ChannelMismatchError, match="channel_axis"):
        predict_markers(model, np.zeros((4, 32, 32), np.uint8))
    with pytest.raises(InvalidParameterError, match="multiple of 16"):
        predict_markers(model, np.zeros((3, 32, 32), np.uint8), tile_size=30)


# --------------------------------------------------------------------------- training smoke test
def synthetic_he(rng: np.random.Generator, n: int, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """H&E-like tiles (eosin-pink background, hematoxylin-purple nuclei) with two known marker maps:
    a nuclear stain (+0.8 in nuclei, -0.8 elsewhere) and ``tanh(4 (R - B))`` of the RGB image."""
    yy, xx = np.mgrid[:size, :size]
    images, targets = [], []
    for _ in range(n):
        nuclei = np.zeros((size, size), bool)
        for cy, cx, r in zip(rng.uniform(0, size, 6), rng.uniform(0, size, 6), rng.uniform(2.5, 5, 6)):
            nuclei |= (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
        color = np.where(
            nuclei[None], np.array([0.35, 0.2, 0.55])[:, None, None], np.array([0.93, 0.6, 0.75])[:, None, None]
        )
        rgb = np.clip(color + 0.04 * rng.standard_normal((3, size, size)), 0, 1)
        images.append(rgb)
        targets.append(np.stack([np.where(nuclei, 0.8, -0.8), np.tanh(4 * (rgb[0] - rgb[2]))]))
    return torch.tensor(np.stack(images), dtype=torch.float32), torch.tensor(np.stack(targets), dtype=torch.float32)


def test_training_lowers_loss_on_synthetic_markers() -> None:
    torch.manual_seed(0)
    x, y = synthetic_he(np.random.default_rng(0), 6)
    model = create_model("miphei_test", markers=("Hoechst", "RminusB")).train()  # frozen ViT + LoRA + decoder
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    inputs = model.normalize(x)
    with torch.no_grad():
        first = F.mse_loss(model(inputs), y).item()
    for _ in range(40):
        opt.zero_grad()
        F.mse_loss(model(inputs), y).backward()
        opt.step()
    with torch.no_grad():
        pred = model(inputs)
    final = F.mse_loss(pred, y).item()
    assert final < 0.3 * first, (first, final)
    nuclear_accuracy = ((pred[:, 0] > 0) == (y[:, 0] > 0)).float().mean().item()
    assert nuclear_accuracy > 0.9, nuclear_accuracy


def test_vitg14_encoder_is_the_h_optimus_0_architecture() -> None:
    """At timm's default 518 px, the ViT-g/14-reg4 encoder (LoRA excluded) has the 1,136,483,840 parameters
    of timm ``vit_giant_patch14_reg4_dinov2`` (H-Optimus-0); built on the meta device (no memory)."""
    with torch.device("meta"):
        model = create_model("miphei_vitg14", img_size=518)
    frozen = sum(p.numel() for n, p in model.encoder.named_parameters() if ".lora_" not in n)
    assert frozen == 1_136_483_840
    lora = [p for n, p in model.named_parameters() if ".lora_" in n]
    assert all(p.requires_grad for p in lora) and sum(p.numel() for p in lora) == 40 * 2 * 2 * 1536 * 8
    assert not any(p.requires_grad for n, p in model.encoder.named_parameters() if ".lora_" not in n)
