"""The detection-curve benchmark's scoring and the vetting fit's ridge choice, on hand-made records."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import detection_curve
import fit_vetting

STRONG = {"snr": 4.5, "peak_snr": 12.0, "spectral_score": 0.85, "masked_edge_fraction": 0.0, "pixels": 350,
          "elongation": 1.3, "albedo_contrast": 0.02, "stripe_like": False}  # fmt: skip
NOISE = {"snr": 1.3, "peak_snr": 1.8, "spectral_score": 0.05, "masked_edge_fraction": 0.0, "pixels": 300,
         "elongation": 12.0, "albedo_contrast": 0.05, "stripe_like": False}  # fmt: skip


def _cand(features, truth_id, covers, ime):
    return {**features, "truth_id": truth_id, "covers": covers, "ime_kg": ime}


def _records():
    truth = [{"id": 1, "peak_ppmm": 800.0, "pixels": 150, "ime_kg": 200.0, "shape": "puff"},
             {"id": 2, "peak_ppmm": 600.0, "pixels": 80, "ime_kg": 50.0, "shape": "puff"},
             {"id": 3, "peak_ppmm": 900.0, "pixels": 120, "ime_kg": 300.0, "shape": "elongated"}]  # fmt: skip
    plume = [_cand(STRONG, 1, [1], 180.0),  # plume 1 found, IME ratio 0.9
             _cand(NOISE, 2, [2], 40.0),  # plume 2: its candidate is rejected by the vetting model
             _cand(STRONG, None, [3], 330.0),  # plume 3 found by covering its core (no IME ratio: not its own)
             _cand(STRONG, None, [], 20.0)]  # a false plume in a plume scene  # fmt: skip
    free = [_cand(STRONG, None, [], 25.0), _cand(NOISE, None, [], 5.0)]
    return [
        {"methane_free": False, "truth": truth, "methods": {"mag1c": {"candidates": plume}}},
        {"methane_free": True, "truth": [], "methods": {"mag1c": {"candidates": free}}},
    ]


def test_evaluate_counts_detections_false_plumes_and_ime_by_hand():
    r = detection_curve.evaluate(_records(), "mag1c")
    assert r["target_strong"] == (1.0, 2) and r["target_weak"] == (0.0, 1)
    assert r["false_per_free_scene"] == 1.0 and r["free_scenes"] == 1 and r["false_in_plume_scenes"] == 1
    assert r["ime_ratio_median"] == pytest.approx(0.9) and r["plumes"] == 3
    assert r["pod_peak"][1] == (0.0, 1) and r["pod_peak"][2] == (1.0, 2)  # 480-700: plume 2; 700-1000: 1 and 3


def test_ridge_is_chosen_by_held_out_log_loss_on_tuning_scenes():
    rng = np.random.default_rng(1)
    records = []
    for _ in range(8):
        cands = []
        for _ in range(30):
            plume = rng.uniform() < 0.5
            base = STRONG if plume else NOISE
            jitter = {k: base[k] * rng.uniform(0.6, 1.4) for k in ("snr", "peak_snr", "spectral_score")}
            cands.append(_cand({**base, **jitter}, 1 if plume else None, [], 1.0))
        records.append({"methane_free": False, "truth": [], "methods": {"mag1c": {"candidates": cands}}})
    cv = fit_vetting.cross_validate(records, (0.3, 1000.0))
    assert set(cv) == {0.3, 1000.0} and all(np.isfinite(list(cv.values())))
    assert cv[0.3] < cv[1000.0]  # a huge penalty flattens every probability towards the base rate
    assert set(fit_vetting.fit(records, 0.3)) >= {"*", "mag1c"}
