"""Official checkpoints behave as the official code: reference tensors from the official repositories.

The fixtures in ``tests/common/official/`` were made by running the official model code (random
official initialisation, seeded) in a throwaway environment; see the README there. Each holds the
official state dict (``sd.*``, float16-representable values stored as float16), the inputs (``in.*``)
and the official outputs (``out.*``, float32). Our converter builds the model from the weights alone.
"""

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from hyperplex.common.errors import ChannelMismatchError
from hyperplex.common.models.chada_vit import chadavit_from_official, unstack_channels
from hyperplex.common.models.channel_vit import channelvit_from_official
from hyperplex.common.models.less_vit import lessvit_from_official

FIXTURES = Path(__file__).parent / "official"
TOL = 1e-5


def _fixture(name):
    path = FIXTURES / f"{name}.safetensors"
    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["config"])
    tensors = {k: v.float() for k, v in load_file(str(path)).items()}
    sd = {k[3:]: v for k, v in tensors.items() if k.startswith("sd.")}
    return sd, tensors, meta


def _max_diff(a, b):
    assert a.shape == b.shape
    return float((a - b).abs().max())


# ---------------------------------------------------------------- ChannelViT
@pytest.mark.parametrize("variant", ["hcs", "plain"])
def test_channelvit_matches_official(variant):
    sd, t, meta = _fixture(f"channelvit_{variant}")
    model = channelvit_from_official(sd, num_heads=meta["num_heads"]).eval()
    assert model.pos_embed_interp == "official"
    cases = [k[3:] for k in t if k.startswith("in.")]
    for case in cases:
        channels = [f"c{i}" for i in meta["cases"][case][0]]
        with torch.no_grad():
            ours = model.forward_features(t[f"in.{case}"], channels)
        assert _max_diff(ours, t[f"out.{case}"]) < TOL, case


def test_channelvit_exact_mode_differs_where_the_official_resizes():
    """The default keeps the stored embedding: equal with one channel, not with three (the official quirk)."""
    sd, t, meta = _fixture("channelvit_hcs")
    model = channelvit_from_official(sd, num_heads=meta["num_heads"], pos_embed_interp="exact").eval()
    with torch.no_grad():
        one = model.forward_features(t["in.one"], ["c3"])
        three = model.forward_features(t["in.three"], ["c4", "c0", "c2"])
    assert _max_diff(one, t["out.one"]) < TOL
    assert _max_diff(three, t["out.three"]) > 1e-4


# ---------------------------------------------------------------- ChAda-ViT
def _chadavit_weights(sd, slots):
    weights = {k: v for k, v in sd.items() if not k.startswith("six.")}
    if slots != 10:  # the fixture's second official model: max_number_channels=6, the same other weights
        weights["channel_token"] = sd["six.channel_token"]
    return weights


def _chadavit_run(model, t, case, counts, grid):
    x, mask = unstack_channels(t[f"in.{case}"], counts)  # official (sum C_i, 1, H, W) input
    with torch.no_grad():
        feats = model.forward_features(x, [f"c{i}" for i in range(x.shape[1])], mask)
    tokens = feats[:, 1:].reshape(feats.shape[0], x.shape[1], grid, -1)[mask]  # real tokens, official order
    return feats[:, 0], tokens.reshape(-1, feats.shape[-1])


@pytest.mark.parametrize("case", ["slots10", "slots10_big", "slots6"])
def test_chadavit_matches_official(case):
    """Training size, DINO interpolation at 24 px, and max_number_channels=6 (no slot embedding officially)."""
    sd, t, meta = _fixture("chadavit")
    slots, counts, h, w = meta["cases"][case]
    model = chadavit_from_official(_chadavit_weights(sd, slots)).eval()
    assert (model.max_channels, model.norm.eps, model.official_slots) == (slots, 1e-6, True)
    cls, tokens = _chadavit_run(model, t, case, counts, (h // 4) * (w // 4))
    assert _max_diff(cls, t[f"cls.{case}"]) < TOL
    assert _max_diff(tokens, t[f"out.{case}"]) < TOL


def test_chadavit_default_modes_differ_from_official_where_expected():
    sd, t, meta = _fixture("chadavit")
    exact = dict(pos_embed_interp="exact", official_slots=False)
    for case, differs in (("slots10", False), ("slots10_big", True), ("slots6", True)):
        slots, counts, h, w = meta["cases"][case]
        model = chadavit_from_official(_chadavit_weights(sd, slots), **exact).eval()
        cls, _ = _chadavit_run(model, t, case, counts, (h // 4) * (w // 4))
        assert (_max_diff(cls, t[f"cls.{case}"]) > 1e-4) is differs, case


def test_chadavit_official_slots_take_at_most_ten_channels():
    sd, _, _ = _fixture("chadavit")
    model = chadavit_from_official(_chadavit_weights(sd, 6))
    model.check_channels([f"c{i}" for i in range(10)])  # 10 > max_channels, as the official padding allows
    with pytest.raises(ChannelMismatchError, match="10 slots"):
        model.check_channels([f"c{i}" for i in range(11)])


# ---------------------------------------------------------------- LESS ViT
@pytest.mark.parametrize("embed_dtype", ["float32", "float64"])
def test_lessvit_matches_official(embed_dtype):
    """Optical, optical + SAR (5500/5700 nm pseudo-wavelengths) and a coarser GSD; float64 misses at SAR."""
    sd, t, meta = _fixture("lessvit")
    kw = {k: meta[k] for k in ("num_heads", "channel_embed_dims_per_head", "rank", "attention_radius")}
    model = lessvit_from_official(sd, embed_dtype=embed_dtype, **kw).eval()
    assert lessvit_from_official(sd, **kw).embed_dtype == "float32"
    worst = 0.0
    for case, (optical, radar, gsd) in meta["cases"].items():
        with torch.no_grad():
            ours = model.forward_features(t[f"in.{case}"], optical + radar, gsd=gsd)
        worst = max(worst, _max_diff(ours, t[f"out.{case}"]))
    assert (worst < TOL) is (embed_dtype == "float32")
