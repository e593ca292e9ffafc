"""The detection-curve benchmark with learned methods: candidates kept without vetting, F1 scores, merged records."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import detection_curve

NOISE = {"snr": 1.3, "peak_snr": 1.8, "spectral_score": 0.05, "masked_edge_fraction": 0.0, "elongation": 12.0,
         "albedo_contrast": 0.05, "stripe_like": False}  # fmt: skip


def _cand(truth_id, covers, pixels, truth_pixels):
    return {**NOISE, "truth_id": truth_id, "covers": covers, "ime_kg": 1.0, "pixels": pixels,
            "truth_pixels": truth_pixels}  # fmt: skip


def _records(method="hypersegformer"):
    truth = [{"id": 1, "peak_ppmm": 800.0, "pixels": 150, "ime_kg": 200.0, "shape": "puff"},
             {"id": 2, "peak_ppmm": 400.0, "pixels": 80, "ime_kg": 50.0, "shape": "puff"}]  # fmt: skip
    plume = [_cand(1, [1], 100, 90), _cand(None, [], 20, 0)]  # plume 1 found; one false plume; plume 2 missed
    free = [_cand(None, [], 30, 0)]
    return [
        {"methane_free": False, "truth": truth, "truth_pixels": 200, "methods": {method: {"candidates": plume}}},
        {"methane_free": True, "truth": [], "truth_pixels": 0, "methods": {method: {"candidates": free}}},
    ]


def test_learned_method_keeps_every_candidate_and_scores_f1_by_hand():
    r = detection_curve.evaluate(_records(), "hypersegformer")
    assert r["false_per_free_scene"] == 1.0 and r["false_in_plume_scenes"] == 1  # noise-like, yet kept
    assert r["pod_peak"][0] == (0.0, 1) and r["pod_peak"][2] == (1.0, 1)
    f1, p, rec = r["plume_f1"]  # 1 of 3 kept candidates finds a plume; 1 of 2 plumes found
    assert (p, rec) == pytest.approx((1 / 3, 1 / 2)) and f1 == pytest.approx(2 * p * rec / (p + rec))
    f1, p, rec = r["pixel_f1"]  # 90 true of 150 predicted pixels; 90 of 200 truth pixels
    assert (p, rec) == pytest.approx((90 / 150, 90 / 200)) and f1 == pytest.approx(2 * p * rec / (p + rec))
    tagged = detection_curve.evaluate(_records("hyperefficientvit@v2"), "hyperefficientvit@v2")
    assert tagged["plume_f1"] == r["plume_f1"]
    vetted = detection_curve.evaluate(_records(), "hypersegformer+vet")  # as the CLI does: vetting rejects them
    assert vetted["false_per_free_scene"] == 0.0 and vetted["pod_peak"][2] == (0.0, 1)


def test_filters_are_vetted_and_old_records_have_no_pixel_f1():
    records = _records("mag1c")
    r = detection_curve.evaluate(records, "mag1c")
    assert r["false_per_free_scene"] == 0.0  # the vetting model rejects the noise-like candidates
    del records[0]["truth_pixels"]
    assert str(detection_curve.evaluate(records, "mag1c")["pixel_f1"][0]) == "nan"


def test_compact_table_adds_the_best_filter_per_bin():
    results = {m: detection_curve.evaluate(_records(m), m) for m in ("hypersegformer",)}
    results["mag1c"] = {**results["hypersegformer"], "pod_peak": [(0.5, 4), (1.0, 2), (0.0, 0), (1.0, 1), (1.0, 1)]}
    results["ace"] = {**results["mag1c"], "pod_peak": [(0.75, 4), (0.5, 2), (0.0, 0), (1.0, 1), (1.0, 1)]}
    lines = detection_curve.compact_table(results).splitlines()
    assert lines[-1].startswith("| best filter per bin | 0.75 (4) | 1.00 (2) | - |")
    assert "0.40 (0.33 / 0.50)" in lines[2]  # plume F1 (P / R) of the learned row


def test_weights_option_and_method_selection():
    assert detection_curve._weights(["hypersegformer@v2=/x/m.safetensors"]) == {
        "hypersegformer@v2": {"weights": "/x/m.safetensors"}
    }
    with pytest.raises(SystemExit, match="METHOD"):
        detection_curve._weights(["mag1c=/x"])
    recs = [
        {"methods": {"mag1c": {}, "hypersegformer@v2": {}, "ace": {}}},
        {"methods": {"mag1c": {}, "hypersegformer@v2": {}}},
    ]
    assert detection_curve._methods_in(recs, None) == ["mag1c", "hypersegformer@v2", "hypersegformer@v2+vet"]
    assert detection_curve._methods_in(recs, ("hypersegformer@v2", "cem")) == ["hypersegformer@v2"]


def test_collect_adds_only_the_missing_methods_to_a_record(tmp_path, monkeypatch):
    calls = []

    def fake(family, index, free, methods, options=None):
        calls.append(methods)
        return {"family": family, "index": index, "methane_free": free, "truth": [], "truth_pixels": 0,
                "methods": {m: {"candidates": [], "new": True} for m in methods}}  # fmt: skip

    monkeypatch.setattr(detection_curve, "_scene_record", fake)
    old = {"methods": {"mag1c": {"candidates": [], "new": False}}}
    (tmp_path / "evaluation_plume_000.json").write_text(json.dumps(old))
    detection_curve.collect("evaluation", 1, 0, ("mag1c", "hypersegformer"), tmp_path)
    merged = json.loads((tmp_path / "evaluation_plume_000.json").read_text())
    assert calls == [("hypersegformer",)] and merged["methods"]["mag1c"]["new"] is False
    assert merged["methods"]["hypersegformer"]["new"] is True
    detection_curve.collect("evaluation", 1, 0, ("mag1c", "hypersegformer"), tmp_path)
    assert len(calls) == 1  # nothing left to do
    detection_curve.collect("evaluation", 1, 0, ("mag1c",), tmp_path, refresh=True)
    assert calls[-1] == ("mag1c",)
    assert json.loads((tmp_path / "evaluation_plume_000.json").read_text())["methods"]["mag1c"]["new"] is True
