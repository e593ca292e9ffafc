"""Equivalence of hyperplex.geo.methane with reference equations, `spectral`'s detectors and mag1c 1.2.0."""

import numpy as np
import pytest
import torch

import hyperplex.geo.methane.mag1c_filter.compiled_engine as compiled_engine
from hyperplex.common.errors import InvalidParameterError
from hyperplex.geo.ch4lut import load_ch4_lut
from hyperplex.geo.methane import ace, cem, mag1c, mag1c_sas, matched_filter, target_spectrum

WL = 381.006 + 7.4363 * np.arange(285)
FWHM = np.full(285, 8.7)
WINDOW = (WL >= 2122) & (WL <= 2488)


def lut_cube(lines=60, samples=8, seed=0, peak=2000.0, noise=0.01):
    """(C, H, W) float32 radiance of the window bands: albedo x slope x LUT background, a Gaussian plume, noise."""
    rng = np.random.default_rng(seed)
    wl, fw = WL[WINDOW], FWHM[WINDOW]
    base = load_ch4_lut().convolve(wl, fw)[0]
    k = target_spectrum(wl, fw) / 1e5
    albedo = rng.uniform(0.3, 1.5, (lines, samples))
    slope = rng.normal(0, 0.1, (lines, samples))
    yy, xx = np.mgrid[:lines, :samples]
    truth = peak * np.exp(-((yy - lines / 2) ** 2 + (xx - samples / 2) ** 2) / (2 * 3.0**2))
    cube = albedo[None] * (1 + slope[None] * (wl[:, None, None] - 2300) / 200) * base[:, None, None]
    cube = cube * np.exp(k[:, None, None] * truth[None]) + rng.normal(0, noise, cube.shape)
    return cube.astype(np.float32), wl, fw, truth


def flat(cube):
    return cube.reshape(cube.shape[0], -1).T.astype(np.float64)


def ref_mf(x, t, multiplicative=True):
    u = x.mean(0)
    c = np.cov(x.T)
    tc = t * u if multiplicative else t - u
    ci = np.linalg.solve(c, tc)
    return (x - u) @ ci / (tc @ ci)


@pytest.fixture(scope="module")
def scene():
    return lut_cube(lines=40, samples=30, seed=3)


@pytest.mark.parametrize("target", ["multiplicative", "additive"])
def test_matched_filter_tile_equals_reference_equation(scene, target):
    cube, wl, fw, _ = scene
    t = target_spectrum(wl, fw)
    ours = matched_filter(cube, wl, fw, group="tile", target=target)
    ref = ref_mf(flat(cube), t, target == "multiplicative") * (1e5 if target == "multiplicative" else 1)
    np.testing.assert_allclose(ours.ravel(), ref, rtol=1e-3, atol=1e-4 * np.abs(ref).max())


def test_matched_filter_column_equals_per_column_reference():
    cube, wl, fw, _ = lut_cube(lines=120, samples=5, seed=1)
    t = target_spectrum(wl, fw)
    ours = matched_filter(cube, wl, fw)
    for col in range(cube.shape[2]):
        ref = ref_mf(cube[:, :, col].T.astype(np.float64), t) * 1e5
        np.testing.assert_allclose(ours[:, col], ref, rtol=1e-3, atol=1e-4 * np.abs(ref).max())


def test_matched_filter_equals_spectral(scene):
    from spectral.algorithms.algorithms import calc_stats
    from spectral.algorithms.detectors import matched_filter as spectral_mf

    cube, wl, fw, _ = scene
    t = target_spectrum(wl, fw)
    pixels = cube.transpose(1, 2, 0).astype(np.float64)
    stats = calc_stats(pixels)
    additive = spectral_mf(pixels, t, stats)  # target t: (t - mean) as in the additive MF
    multiplicative = spectral_mf(pixels, stats.mean * (1 + t), stats) * 1e5  # target offset t * mean
    for kind, ref in (("additive", additive), ("multiplicative", multiplicative)):
        ours = matched_filter(cube, wl, fw, group="tile", target=kind)
        np.testing.assert_allclose(ours, ref, rtol=1e-3, atol=1e-4 * np.abs(ref).max())


def test_ace_equals_spectral_and_equation(scene):
    from spectral.algorithms.algorithms import calc_stats
    from spectral.algorithms.detectors import ace as spectral_ace

    cube, wl, fw, _ = scene
    t = target_spectrum(wl, fw)
    pixels = cube.transpose(1, 2, 0).astype(np.float64)
    stats = calc_stats(pixels)
    ours = ace(cube, wl, fw)
    ref = spectral_ace(pixels, stats.mean * (1 + t), stats)
    np.testing.assert_allclose(ours, ref, atol=1e-4)
    x = flat(cube)
    u, c = x.mean(0), np.cov(x.T)
    ci = np.linalg.inv(c)
    d = x - u
    tc = t - u
    eq = (d @ ci @ tc) ** 2 / ((tc @ ci @ tc) * np.einsum("ij,jk,ik->i", d, ci, d))
    np.testing.assert_allclose(ace(cube, wl, fw, target="additive").ravel(), eq, atol=1e-4)
    assert np.all((ours >= 0) & (ours <= 1 + 1e-5))


def test_cem_equals_equation(scene):
    cube, wl, fw, _ = scene
    t = target_spectrum(wl, fw)
    x = flat(cube)
    r = x.T @ x / x.shape[0]
    tc = t * x.mean(0)  # the unit absorption times the mean radiance: a unit-free score
    ri = np.linalg.solve(r, tc)
    ref = x @ ri / (tc @ ri)
    np.testing.assert_allclose(cem(cube, wl, fw).ravel(), ref, rtol=1e-3, atol=1e-4 * np.abs(ref).max())


@pytest.mark.parametrize("factor", [1e-3, 1e3])
def test_cem_and_ace_scores_do_not_depend_on_radiance_units(scene, factor):
    """Scaling the radiance (e.g. W/m²/sr/nm to µW/cm²/sr/nm) leaves CEM and ACE scores unchanged."""
    cube, wl, fw, _ = scene
    scaled = (cube.astype(np.float64) * factor).astype(np.float32)
    for fn in (cem, ace):
        base = fn(cube, wl, fw)
        np.testing.assert_allclose(fn(scaled, wl, fw), base, rtol=2e-3, atol=2e-4 * np.nanmax(np.abs(base)))
    tile = cem(cube, wl, fw, group="column", group_columns=4)
    np.testing.assert_allclose(cem(scaled, wl, fw, group="column", group_columns=4), tile, rtol=2e-3,
                               atol=2e-4 * np.nanmax(np.abs(tile)))  # fmt: skip


@pytest.fixture
def acrwl1mf(monkeypatch):
    """mag1c 1.2.0's acrwl1mf (float64) on a [batch, pixels, bands] array.

    mag1c 1.2.0 calls ``torch.cholesky``, which newer torch releases lack: the shim is set for the test only.
    ``stats`` (pixels,) bool is mag1c's mask: the pixels that contribute to the mean and covariance.
    """
    if not hasattr(torch, "cholesky"):
        monkeypatch.setattr(
            torch, "cholesky", lambda a, upper=False: torch.linalg.cholesky(a, upper=upper), raising=False
        )
    from mag1c.mag1c import acrwl1mf as reference

    def run(x_bnp, template, num_iter=30, albedo=True, alpha=0.0, nonneg=True, stats=None):
        x = torch.from_numpy(np.ascontiguousarray(x_bnp, dtype=np.float64))
        mask = torch.ones(x.shape[1], dtype=torch.bool) if stats is None else torch.from_numpy(stats)
        mf, r = reference(x, torch.from_numpy(template), num_iter, not albedo, not nonneg, False, 1.0, alpha, mask)
        return mf[..., 0].numpy(), r[..., 0].numpy()

    return run


def _close(ours, ref):
    scale = max(np.abs(ref).max(), 1.0)
    assert np.abs(ours - ref).max() <= 1e-3 * scale, np.abs(ours - ref).max() / scale


@pytest.mark.parametrize(
    "kwargs", [{}, {"num_iter": 5, "albedo": False}, {"shrinkage": 1e-4}, {"nonnegative": False, "num_iter": 0}]
)
def test_mag1c_columns_equal_acrwl1mf(acrwl1mf, kwargs):
    cube, wl, fw, _ = lut_cube(lines=200, samples=6, seed=2)
    ours, ratio = mag1c(cube, wl, fw, return_albedo=True, **kwargs)
    ref, ref_ratio = acrwl1mf(
        cube.transpose(2, 1, 0),
        target_spectrum(wl, fw),
        kwargs.get("num_iter", 30),
        kwargs.get("albedo", True),
        kwargs.get("shrinkage", 0.0),
        kwargs.get("nonnegative", True),
    )
    _close(ours, ref.T)
    np.testing.assert_allclose(ratio, ref_ratio.T, rtol=1e-5)
    assert (ours > 0).sum() > 10


def test_mag1c_column_groups_equal_acrwl1mf(acrwl1mf):
    cube, wl, fw, _ = lut_cube(lines=90, samples=6, seed=4)
    grouped = mag1c(cube, wl, fw, group_columns=3, num_iter=10)
    x = cube.transpose(2, 1, 0).reshape(2, 3 * 90, -1)  # two groups of 3 columns, all lines
    _close(grouped, acrwl1mf(x, target_spectrum(wl, fw), 10)[0].reshape(6, 90).T)


def test_mag1c_tiles_equal_acrwl1mf(acrwl1mf):
    """2 x 2 tiles of 30 x 30 pixels, the right ones cut to 30 x 20 by the image edge."""
    cube, wl, fw, _ = lut_cube(lines=60, samples=50, seed=4)
    t = target_spectrum(wl, fw)
    tiled = mag1c(cube, wl, fw, group="tile", tile_size=30, num_iter=10)
    for r0 in (0, 30):
        for c0 in (0, 30):
            sub = cube[:, r0 : r0 + 30, c0 : c0 + 30]
            ref = acrwl1mf(sub.reshape(sub.shape[0], -1).T[None], t, 10)[0].reshape(30, -1)
            _close(tiled[r0 : r0 + 30, c0 : c0 + 30], ref)


def test_mag1c_invalid_pixels_are_excluded_like_removing_them(acrwl1mf):
    cube, wl, fw, _ = lut_cube(lines=150, samples=3, seed=5)
    cube[:, 10, 0] = -9999.0
    cube[3, 20, 1] = np.nan
    cube[:, 30, 2] = 0.0
    mask = np.zeros(cube.shape[1:], bool)
    mask[40:45, 1] = True
    ours = mag1c(cube, wl, fw, mask=mask)
    bad = ~np.isfinite(cube).all(0) | (cube == -9999).any(0) | (cube == 0).all(0) | mask
    assert np.array_equal(np.isnan(ours), bad)
    t = target_spectrum(wl, fw)
    for col in range(3):
        keep = ~bad[:, col]
        ref = acrwl1mf(cube[:, keep, col].T[None], t)[0][0]
        _close(ours[keep, col], ref)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("group", ["column", "tile"])
def test_mag1c_on_cuda_equals_the_cpu_engines(group):
    """The torch engine on the GPU (float32 products on another device) against the CPU engines."""
    cube, wl, fw, _ = lut_cube(lines=300, samples=7, seed=6)
    gpu = mag1c(cube, wl, fw, device="cuda", group=group)
    cpu = mag1c(cube, wl, fw, device="cpu", group=group)
    _close(gpu, cpu)
    assert np.array_equal(np.isnan(gpu), np.isnan(cpu)) and (gpu > 0).sum() > 10


def _mag1c_numpy(x, t, in_stats=None, num_iter=30):
    """mag1c 1.2.0's loop in numpy (float64) on pixels x (N, C), statistics from ``in_stats`` pixels only.

    The mean and covariance are those of the statistics pixels (divided by their number); every pixel gets
    an estimate. Returns alpha x 1e5 (N,) and the last iteration's mean, C^-1 t and normaliser.
    """
    in_stats = np.ones(x.shape[0], bool) if in_stats is None else in_stats
    s = x[in_stats]
    mu = s.mean(0)
    r = x @ mu / (mu @ mu)
    tgt = t * mu
    cit = np.linalg.solve((s - mu).T @ (s - mu) / s.shape[0], tgt)
    norm = tgt @ cit
    a = np.maximum((x - mu) @ cit / (r * norm), 0)
    for _ in range(num_iter):
        w = 1 / (r * (a + 1e-9))
        mod = s - (r * a)[in_stats][:, None] * tgt
        mu = mod.mean(0)
        tgt = t * mu
        cit = np.linalg.solve((mod - mu).T @ (mod - mu) / s.shape[0], tgt)
        norm = max(tgt @ cit, 1.0)
        a = np.maximum(((x - mu) @ cit - w) / (r * norm), 0)
    return a * 1e5, (mu, cit, norm)


def _sas_reference(cube, t, sample_step, num_iter=30, steps=3):
    """Plain numpy Mag1c-SAS on one tile: full mag1c loop on the lattice sample, frozen statistics on all."""
    x = cube.reshape(cube.shape[0], -1).T.astype(np.float64)
    lat = cube[:, sample_step // 2 :: sample_step, sample_step // 2 :: sample_step]
    _, (mu, cit, norm) = _mag1c_numpy(lat.reshape(lat.shape[0], -1).T.astype(np.float64), t, num_iter=num_iter)
    rr = x @ mu / (mu @ mu)
    a0 = np.maximum((x - mu) @ cit / (rr * norm), 0)
    a = a0
    for _ in range(steps):
        a = np.maximum(a0 - 1 / (rr * (a + 1e-9)) / (rr * norm), 0)
    return (a * 1e5).reshape(cube.shape[1:])


def test_mag1c_sas_equals_numpy_reference():
    cube, wl, fw, _ = lut_cube(lines=100, samples=100, seed=7)
    t = target_spectrum(wl, fw)
    ours = mag1c_sas(cube, wl, fw, sample=0.04)  # lattice step 5
    ref = _sas_reference(cube, t, 5)
    _close(ours, ref)
    assert (ours > 0).sum() > 10


def _plume_stats_mask(truth):
    return truth > 200


def test_mag1c_first_estimate_with_stats_mask_equals_acrwl1mf_mask(acrwl1mf):
    """Without iterations, ``stats_mask`` is mag1c 1.2.0's mask (pixels kept out of mean and covariance)."""
    cube, wl, fw, truth = lut_cube(lines=150, samples=5, seed=8, peak=4000.0)
    excluded = _plume_stats_mask(truth)
    t = target_spectrum(wl, fw)
    for engine in ("auto", "torch"):
        ours = mag1c(cube, wl, fw, stats_mask=excluded, num_iter=0, engine=engine)
        for col in range(cube.shape[2]):
            ref = acrwl1mf(cube[:, :, col].T[None], t, 0, stats=~excluded[:, col])[0][0]
            _close(ours[:, col], ref)


@pytest.mark.parametrize(("group", "engine"), [("column", "auto"), ("column", "torch"), ("tile", "torch")])
def test_mag1c_with_stats_mask_equals_numpy_reference(group, engine):
    """Iterations with a plume kept out of the statistics: mean, covariance and their updates from the
    other pixels only, every pixel filtered (compiled kernels, torch on the resident cube, torch on tiles)."""
    cube, wl, fw, truth = lut_cube(lines=150, samples=5, seed=8, peak=4000.0)
    excluded = _plume_stats_mask(truth)
    t = target_spectrum(wl, fw)
    ours = mag1c(cube, wl, fw, stats_mask=excluded, group=group, engine=engine)
    plain = mag1c(cube, wl, fw, group=group, engine=engine)
    columns = range(cube.shape[2]) if group == "column" else [slice(None)]
    for col in columns:
        x = cube[:, :, col].reshape(cube.shape[0], -1).T.astype(np.float64)
        ref = _mag1c_numpy(x, t, ~excluded[:, col].ravel())[0].reshape(ours[:, col].shape)
        _close(ours[:, col], ref)
    core = truth > 2000
    assert ours[core].mean() > plain[core].mean()  # the plume no longer biases its own background


@pytest.mark.parametrize("fn", ["mf", "cem", "ace"])
def test_classic_filters_with_stats_mask_equal_equations(fn):
    """Statistics (mean, covariance, correlation) from the pixels outside ``stats_mask``, applied to all."""
    cube, wl, fw, truth = lut_cube(lines=40, samples=30, seed=9, peak=4000.0)
    excluded = _plume_stats_mask(truth)
    t = target_spectrum(wl, fw)
    x = flat(cube)
    bg = x[~excluded.ravel()]
    u, c = bg.mean(0), np.cov(bg.T)
    if fn == "mf":
        ours = matched_filter(cube, wl, fw, group="tile", stats_mask=excluded)
        ci = np.linalg.solve(c, t * u)
        ref = (x - u) @ ci / ((t * u) @ ci) * 1e5
    elif fn == "cem":
        ours = cem(cube, wl, fw, stats_mask=excluded)
        ri = np.linalg.solve(bg.T @ bg / bg.shape[0], t * u)
        ref = x @ ri / ((t * u) @ ri)
    else:
        ours = ace(cube, wl, fw, stats_mask=excluded)
        ci, d, tc = np.linalg.inv(c), x - u, t * u
        ref = (d @ ci @ tc) ** 2 / ((tc @ ci @ tc) * np.einsum("ij,jk,ik->i", d, ci, d))
    np.testing.assert_allclose(ours.ravel(), ref, rtol=1e-3, atol=1e-4 * np.abs(ref).max())


# --- Mag1c's compiled CPU iterations (numba) against the torch path and mag1c 1.2.0 ------------------------
needs_numba = pytest.mark.skipif(not compiled_engine.available(), reason="numba is not installed")


def _reference(acrwl1mf, cube, wl, fw, **kwargs):
    return acrwl1mf(cube.transpose(2, 1, 0), target_spectrum(wl, fw), **kwargs)[0].T


def _spy_compiled(monkeypatch):
    """Record the compiled iterations' calls: how many, and how many group iterations re-listed every pixel."""
    seen = {"calls": 0, "relisted": 0}
    original = compiled_engine.ColumnCandidates.iterate

    def iterate(self, *args):
        final, relisted = original(self, *args)
        seen["calls"] += 1
        seen["relisted"] += relisted
        return final, relisted

    monkeypatch.setattr(compiled_engine.ColumnCandidates, "iterate", iterate)
    return seen


@needs_numba
@pytest.mark.parametrize("shrinkage", [0.0, 1e-4])
def test_compiled_iterations_match_torch_and_acrwl1mf(monkeypatch, acrwl1mf, shrinkage):
    """No shrinkage: Woodbury updates per group; with shrinkage: a dense solve per group and iteration."""
    cube, wl, fw, _ = lut_cube(lines=300, samples=7, seed=11)
    seen = _spy_compiled(monkeypatch)
    compiled = mag1c(cube, wl, fw, shrinkage=shrinkage)
    assert seen["calls"] == 1
    plain = mag1c(cube, wl, fw, engine="torch", shrinkage=shrinkage)
    ref = _reference(acrwl1mf, cube, wl, fw, alpha=shrinkage)
    _close(compiled, ref)
    _close(plain, ref)
    assert (compiled > 0).sum() > 10


@needs_numba
@pytest.mark.parametrize("shrinkage", [0.0, 1e-10])
def test_uncertified_groups_are_listed_again(monkeypatch, acrwl1mf, shrinkage):
    """Low noise: the bound that lets pixels at 0 be skipped fails, so whole groups are evaluated again."""
    cube, wl, fw, _ = lut_cube(lines=200, samples=6, seed=2, noise=1e-4)
    seen = _spy_compiled(monkeypatch)
    compiled = mag1c(cube, wl, fw, shrinkage=shrinkage)
    assert seen["relisted"] > 0, "the low-noise scene should fail the bound"
    _close(compiled, _reference(acrwl1mf, cube, wl, fw, alpha=shrinkage))


@needs_numba
def test_sparse_and_singular_columns_keep_the_compiled_path(monkeypatch):
    """A column with fewer valid pixels than bands (fallback shrinkage) and one whose pixels are all equal
    (singular covariance) are solved densely inside the compiled iterations, like the torch path does."""
    cube, wl, fw, _ = lut_cube(lines=160, samples=6, seed=15)
    cube[:, 20:, 1] = -9999.0  # 20 valid pixels < 49 bands
    cube[:, :, 4] = cube[:, :1, 4]  # every pixel of column 4 identical
    seen = _spy_compiled(monkeypatch)
    with pytest.warns(RuntimeWarning) as record:
        compiled = mag1c(cube, wl, fw)
    assert seen["calls"] == 1
    messages = " ".join(str(w.message) for w in record)
    assert "fewer valid pixels than bands" in messages and "singular" in messages
    with pytest.warns(RuntimeWarning):
        plain = mag1c(cube, wl, fw, engine="torch")
    assert np.array_equal(np.isnan(compiled), np.isnan(plain))
    _close(np.nan_to_num(compiled), np.nan_to_num(plain))


@needs_numba
def test_degenerate_group_comes_out_nan_with_a_warning():
    """A valid pixel with albedo factor exactly 0 makes its column's filter non-finite: NaN and a warning."""
    rng = np.random.default_rng(0)
    half = rng.integers(16, 48, size=(4, 32, 1)).astype(np.float32) / 8  # exact binary fractions
    column = np.concatenate([half, 8 - half], axis=1)  # column mean exactly (4, 4, 4, 4)
    column[:, 0, 0] = [1, -1, 2, -2]  # x . mean = 0: R = 0
    column[:, 32, 0] = 8 - column[:, 0, 0]  # its mirror keeps the mean exact
    wl = np.array([2200.0, 2275.0, 2350.0, 2425.0])
    with pytest.warns(RuntimeWarning, match="non-finite filter"):
        out = mag1c(column, wl, np.full(4, 8.7), window=None, num_iter=3)
    assert np.isnan(out).all()


@needs_numba
def test_kernels_compile_without_a_writable_cache(monkeypatch):
    """numba refuses ``cache=True`` where no cache location is writable: the kernel compiles in memory."""
    from numba.core.caching import CacheImpl

    from hyperplex.geo.methane.mag1c_filter.jit import kernel

    monkeypatch.setattr(CacheImpl, "_locator_classes", [])

    @kernel(parallel=True)
    def total(values):
        out = 0.0
        for i in range(values.size):
            out += values[i]
        return out

    assert total(np.arange(5.0)) == 10.0


@needs_numba
def test_result_does_not_depend_on_thread_count():
    cube, wl, fw, _ = lut_cube(lines=150, samples=9, seed=12)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = mag1c(cube, wl, fw)
    finally:
        torch.set_num_threads(threads)
    np.testing.assert_array_equal(one, mag1c(cube, wl, fw))


@needs_numba
def test_concurrent_calls_from_threads_match_sequential_calls():
    """napari workers and threaded schedulers may call the filter from several threads at once."""
    from concurrent.futures import ThreadPoolExecutor

    cubes = [lut_cube(lines=120, samples=5, seed=s)[0] for s in (21, 22, 23)]
    _, wl, fw, _ = lut_cube(lines=2, samples=1)
    sequential = [mag1c(c, wl, fw) for c in cubes]
    with ThreadPoolExecutor(3) as pool:
        concurrent = list(pool.map(lambda c: mag1c(c, wl, fw), cubes))
    for a, b in zip(sequential, concurrent, strict=True):
        np.testing.assert_array_equal(a, b)


@needs_numba
def test_compiled_path_with_invalid_pixels_and_groups():
    cube, wl, fw, _ = lut_cube(lines=120, samples=6, seed=13)
    cube[:, 5, 2] = -9999.0
    cube[:, 7:9, 4] = np.nan
    cube[3, 11, 1] = np.inf
    cube[:, 12, 0] = 0.0
    # (not nonnegative=False with iterations: the unclipped first update makes each covariance singular, mag1c
    # 1.2.0 fails there and both engines fall back to shrinkage, group by group, where rounding decides)
    for kwargs in ({}, {"group_columns": 2}, {"albedo": False, "num_iter": 7}, {"sparsity": False, "num_iter": 4},
                   {"shrinkage": 1e-3, "group_columns": 3}):  # fmt: skip
        compiled = mag1c(cube, wl, fw, **kwargs)
        plain = mag1c(cube, wl, fw, engine="torch", **kwargs)
        assert np.array_equal(np.isnan(compiled), np.isnan(plain))
        _close(np.nan_to_num(compiled), np.nan_to_num(plain))


def test_unknown_engine_is_rejected():
    cube, wl, fw, _ = lut_cube(lines=20, samples=3)
    with pytest.raises(InvalidParameterError, match="engine"):
        mag1c(cube, wl, fw, engine="numpy")


@needs_numba
def test_compiled_reader_equals_torch_reader():
    """read_compiled = read_torch: same shifted spectra, validity, statistics pixels and statistics."""
    from hyperplex.geo.methane.grouping import Grouping
    from hyperplex.geo.methane.inputs import prepare_cube
    from hyperplex.geo.methane.mag1c_filter.resident import read_compiled, read_torch
    from hyperplex.geo.methane.options import FilterOptions

    cube, wl, fw, _ = lut_cube(lines=70, samples=9, seed=14)
    cube[:, 3, 2] = -9999.0
    cube[4, 6, 5] = np.nan
    cube[1, 9, 7] = -np.inf
    cube[:, 12, 8] = 0.0
    mask = np.zeros(cube.shape[1:], bool)
    mask[20:23, 4] = True
    stats_mask = np.zeros(cube.shape[1:], bool)
    stats_mask[30:40, 1:3] = True
    for excluded in (None, stats_mask):
        prepared = prepare_cube(cube, wl, fw, FilterOptions(mask=mask, stats_mask=excluded, window=None))
        grouping = Grouping.create("column", prepared.shape, columns=2)
        resident, stats = read_torch(prepared, grouping, torch.device("cpu"), 5)
        resident_c, stats_c = read_compiled(prepared, grouping)  # numpy: the compiled path imports no torch
        assert isinstance(resident_c.cube, np.ndarray) and isinstance(stats_c.gram, np.ndarray)
        np.testing.assert_array_equal(resident_c.valid, resident.valid.numpy())
        assert int((~resident.valid).sum()) == 4 + 3
        np.testing.assert_array_equal(resident_c.stats, resident.stats.numpy())
        assert int((resident.valid & ~resident.stats).sum()) == (0 if excluded is None else 20)
        np.testing.assert_array_equal(stats_c.shift, stats.shift.numpy())  # the same reference spectra
        np.testing.assert_array_equal(resident_c.cube, resident.cube.numpy())
        np.testing.assert_allclose(stats_c.gram, stats.gram.numpy(), rtol=1e-12, atol=0)
        np.testing.assert_allclose(stats_c.sum, stats.sum.numpy(), rtol=1e-12, atol=1e-9)
        np.testing.assert_array_equal(stats_c.count, stats.count.numpy())
