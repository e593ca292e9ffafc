"""The numpy and torch spellings of the filters' small-matrix algebra agree, and the device check needs no torch."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hyperplex.common.errors import InvalidParameterError
from hyperplex.geo.methane import backend, devices
from hyperplex.geo.methane.group_stats import GroupStats
from hyperplex.geo.methane.linalg import group_shrinkage, solve


def _spd(groups: int, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((groups, 3 * n, n))
    return a.transpose(0, 2, 1) @ a / (3 * n)


def test_cholesky_operations_agree_and_solve_the_systems():
    matrix = _spd(5, 6)
    rhs = np.random.default_rng(1).standard_normal((5, 6, 2))
    factor, failed = backend.cholesky_ex(matrix)
    factor_t, failed_t = backend.cholesky_ex(torch.from_numpy(matrix))
    assert not failed.any() and not bool(failed_t.any())
    np.testing.assert_allclose(factor, factor_t.numpy(), rtol=1e-12, atol=1e-14)
    x = backend.cholesky_solve(rhs, factor)
    np.testing.assert_allclose(matrix @ x, rhs, atol=1e-10)  # the known answer: it solves the system
    np.testing.assert_allclose(x, backend.cholesky_solve(torch.from_numpy(rhs), factor_t).numpy(), atol=1e-12)
    inverse = backend.cholesky_inverse(factor)
    np.testing.assert_allclose(inverse @ matrix, np.broadcast_to(np.eye(6), matrix.shape), atol=1e-10)
    np.testing.assert_allclose(inverse, backend.cholesky_inverse(factor_t).numpy(), atol=1e-10)


def test_a_failed_factorisation_is_flagged_per_matrix():
    matrix = _spd(4, 5)
    matrix[2] = -np.eye(5)  # not positive definite
    _, failed = backend.cholesky_ex(matrix)
    _, failed_t = backend.cholesky_ex(torch.from_numpy(matrix))
    assert failed.tolist() == [False, False, True, False] == failed_t.tolist()


def test_solve_with_shrinkage_and_singular_groups_is_the_same_in_numpy_and_torch():
    cov = _spd(4, 5, seed=2)
    cov[1] = np.outer(np.arange(1.0, 6.0), np.arange(1.0, 6.0))  # rank one: singular, needs the fallback
    count = np.array([40.0, 40.0, 3.0, 0.0])  # a small group (shrunk) and an empty one
    rhs = np.random.default_rng(3).standard_normal((4, 5))
    with pytest.warns(RuntimeWarning):
        alpha = group_shrinkage(count, 5, 0.0, "test")
    with pytest.warns(RuntimeWarning, match="singular"):
        x, _ = solve(cov, rhs, alpha, "test", count)
    as_t = [torch.from_numpy(v) for v in (cov, rhs, count)]
    with pytest.warns(RuntimeWarning):
        alpha_t = group_shrinkage(as_t[2], 5, 0.0, "test")
    with pytest.warns(RuntimeWarning, match="singular"):
        x_t, _ = solve(as_t[0], as_t[1], alpha_t, "test", as_t[2])
    np.testing.assert_allclose(alpha, alpha_t.numpy())
    np.testing.assert_allclose(x, x_t.numpy(), rtol=1e-9, atol=1e-12)
    assert alpha.tolist() == [0.0, 0.0, 0.1, 0.0]


def test_group_stats_methods_agree_across_kinds():
    rng = np.random.default_rng(4)
    shift, total = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    gram = _spd(3, 4, seed=5) * 10
    stats = GroupStats(shift, np.array([10.0, 0.0, 7.0]), total, gram)
    stats_t = GroupStats(*(torch.from_numpy(v) for v in (stats.shift, stats.count, stats.sum, stats.gram)))
    for name in ("mean", "correlation", "covariance"):
        got = getattr(stats, name)
        want = getattr(stats_t, name)
        got, want = (got, want) if name == "mean" else (got(), want())
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-12, atol=1e-12, err_msg=name)
    merged, merged_t = stats.merged(), stats_t.merged()
    np.testing.assert_allclose(merged.covariance(1), merged_t.covariance(1).numpy(), rtol=1e-12)


def test_like_and_to_numpy_keep_the_kind():
    values = np.arange(3.0)
    assert backend.like(values, values) is values
    tensor = backend.like(torch.zeros(1), values)
    assert backend.is_tensor(tensor) and not backend.is_tensor(values)
    np.testing.assert_array_equal(backend.to_numpy(tensor), values)
    np.testing.assert_array_equal(backend.where(values > 1, values, 0.0), [0.0, 0.0, 2.0])


def _fake_torch(monkeypatch: pytest.MonkeyPatch, tmp_path, libraries: list[str]) -> None:
    """Make ``find_spec('torch')`` point at a fake install whose ``lib`` holds ``libraries``."""
    (tmp_path / "torch" / "lib").mkdir(parents=True)
    for name in libraries:
        (tmp_path / "torch" / "lib" / name).write_bytes(b"")
    spec = SimpleNamespace(origin=str(tmp_path / "torch" / "__init__.py"))
    monkeypatch.setattr(devices.importlib.util, "find_spec", lambda name: spec)
    devices.gpu_build_installed.cache_clear()


@pytest.mark.parametrize(("libraries", "gpu"), [(["libtorch_cpu.so"], False), (["libtorch_cuda.so"], True),
                                                (["torch_cuda.dll"], True), (["libtorch_hip.so"], True)])  # fmt: skip
def test_gpu_build_is_told_from_the_install(monkeypatch, tmp_path, libraries, gpu):
    _fake_torch(monkeypatch, tmp_path, libraries)
    try:
        assert devices.gpu_build_installed() is gpu
    finally:
        devices.gpu_build_installed.cache_clear()


def test_runs_on_cpu(monkeypatch, tmp_path):
    assert devices.runs_on_cpu("cpu") and devices.runs_on_cpu(torch.device("cpu"))
    with pytest.raises(InvalidParameterError, match="device"):
        devices.runs_on_cpu("gpu0")
    _fake_torch(monkeypatch, tmp_path, ["libtorch_cpu.so"])
    monkeypatch.setattr(devices, "sys", SimpleNamespace(modules={}))  # a process that has not imported torch

    def no_torch(device):
        raise AssertionError("resolve_device (a torch import) was called")

    monkeypatch.setattr(devices, "resolve_device", no_torch)
    try:
        assert devices.runs_on_cpu(None)  # a CPU-only build: decided from its files
        _fake_torch(monkeypatch, tmp_path / "gpu", ["libtorch_cuda.so"])
        with pytest.raises(AssertionError, match="resolve_device"):
            devices.runs_on_cpu(None)  # a GPU build: torch must be asked
    finally:
        devices.gpu_build_installed.cache_clear()


def test_large_batches_split_across_threads_give_the_same_answers(monkeypatch):
    monkeypatch.setattr(backend, "compute_threads", lambda: 3)
    matrix = _spd(400, 7, seed=4)  # 3 slices of >= 64 groups
    rhs = np.random.default_rng(5).standard_normal((400, 7, 3))
    factor, failed = backend.cholesky_ex(matrix)
    assert not failed.any()
    np.testing.assert_array_equal(factor, np.linalg.cholesky(matrix))
    np.testing.assert_allclose(matrix @ backend.cholesky_solve(rhs, factor), rhs, atol=1e-10)
    np.testing.assert_allclose(backend.cholesky_inverse(factor), np.linalg.inv(matrix), rtol=1e-9, atol=1e-10)
    matrix[333] = -np.eye(7)  # a failure in the last slice is still flagged on its own
    assert np.flatnonzero(backend.cholesky_ex(matrix)[1]).tolist() == [333]
    calls = []
    backend.in_threads(lambda part: calls.append(len(part)) or part, matrix)
    assert sorted(calls) == [133, 133, 134]


def test_an_unsolvable_group_solves_to_nan_and_leaves_the_others():
    matrix = _spd(3, 4, seed=6)
    factor = np.linalg.cholesky(matrix)
    factor[1] = np.nan  # as linalg._repair leaves a group it could not factorise
    rhs = np.ones((3, 4, 1))
    x = backend.cholesky_solve(rhs, factor)
    assert np.isnan(x[1]).all()
    np.testing.assert_allclose(matrix[[0, 2]] @ x[[0, 2]], rhs[[0, 2]], atol=1e-10)
