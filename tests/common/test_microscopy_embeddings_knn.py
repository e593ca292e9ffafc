"""The kNN protocols of ``benchmarks/microscopy_embeddings.py`` (known answers)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "microscopy_embeddings.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("microscopy_embeddings", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _clusters(rng: np.random.Generator, n: int, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, len(centres), n)
    return centres[labels] + 0.3 * rng.standard_normal((n, centres.shape[1])), labels.astype(str)


def test_both_protocols_find_separated_clusters_and_agree_with_macro_f1(bench):
    rng = np.random.default_rng(0)
    centres = 3 * np.eye(4)[:3]
    ref, ref_y = _clusters(rng, 300, centres)
    query, query_y = _clusters(rng, 200, centres)
    for protocol in bench.PROTOCOLS:
        pred = bench.knn_predict(ref, ref_y, query, protocol)
        assert bench.macro_f1(query_y, pred) == 1.0
    assert bench.macro_f1(np.array(["a", "a", "b"]), np.array(["a", "b", "b"])) == pytest.approx((2 / 3 + 2 / 3) / 2)
    with pytest.raises(ValueError, match="protocol"):
        bench.knn_predict(ref, ref_y, query, "manhattan")


def test_cosine_protocol_is_scale_free_and_zscore_is_per_dimension(bench):
    rng = np.random.default_rng(1)
    centres = 3 * np.eye(4)[:3]
    ref, ref_y = _clusters(rng, 300, centres)
    query, query_y = _clusters(rng, 200, centres)
    shift = np.array([5.0, -2.0, 1.0, 7.0])
    same = bench.knn_predict(ref, ref_y, query, "cosine")
    np.testing.assert_array_equal(bench.knn_predict(4 * ref + shift, ref_y, 4 * query + shift, "cosine"), same)
    loud = np.array([1.0, 1.0, 1.0, 100.0])  # per-dimension scales: z-scoring undoes them, cosine does not
    zscored = bench.knn_predict(ref, ref_y, query, "zscore")
    np.testing.assert_array_equal(bench.knn_predict(ref * loud, ref_y, query * loud, "zscore"), zscored)
    angles = ref - ref.mean(0), (ref * loud) - (ref * loud).mean(0)
    assert not np.allclose(*(a / np.linalg.norm(a, axis=1, keepdims=True) for a in angles))


def test_cosine_votes_are_weighted_by_similarity(bench):
    ref = np.array([[1.0, 0.0]] + [[0.0, 1.0]] * 19 + [[-1.0, -1.0]] * 5)
    labels = np.array(["near"] + ["far"] * 19 + ["other"] * 5)
    query = np.array([[1.0, 0.05]])  # after centring, one very similar "near" outweighs 19 "far"
    assert bench.knn_predict(ref, labels, query, "cosine", k=20)[0] == "near"
    assert bench.knn_predict(ref, labels, query, "zscore", k=20)[0] == "far"  # a plain majority
