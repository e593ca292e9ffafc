"""Input types, invalid pixels and bad-input handling of hyperplex.geo.methane."""

import warnings

import numpy as np
import pytest

from hyperplex.common.errors import ChannelMismatchError, InvalidParameterError, NoValidDataError
from hyperplex.geo.ch4lut import load_ch4_lut
from hyperplex.geo.methane import ace, cem, mag1c, mag1c_sas, matched_filter, select_bands, target_spectrum

WL = 381.006 + 7.4363 * np.arange(285)
FWHM = np.full(285, 8.7)
FILTERS = [matched_filter, mag1c, mag1c_sas, cem, ace]


def quick(fn):
    """The filter with few iterations (these tests check plumbing, not convergence)."""
    if fn is mag1c:
        return lambda *a, **k: mag1c(*a, num_iter=3, **k)
    if fn is mag1c_sas:
        return lambda *a, **k: mag1c_sas(*a, num_iter=3, **k)
    return fn


def small_cube(lines=40, samples=30, seed=0, full=False, albedo_range=(0.3, 1.5), sigma=2.5):
    """(C, H, W) float32 radiance with a plume; the window bands only, or all 285 bands when ``full``."""
    rng = np.random.default_rng(seed)
    wl, fw = (WL, FWHM) if full else (WL[(WL >= 2122) & (WL <= 2488)], FWHM[(WL >= 2122) & (WL <= 2488)])
    base = np.maximum(load_ch4_lut().convolve(wl, fw)[0], 1.0)
    k = target_spectrum(wl, fw) / 1e5
    albedo = rng.uniform(*albedo_range, (lines, samples))
    yy, xx = np.mgrid[:lines, :samples]
    truth = 3000 * np.exp(-((yy - lines / 2) ** 2 + (xx - samples / 2) ** 2) / (2 * sigma**2))
    cube = albedo[None] * base[:, None, None] * np.exp(k[:, None, None] * truth[None])
    return (cube + rng.normal(0, 0.01, cube.shape)).astype(np.float32), wl, fw


@pytest.fixture(scope="module")
def cube():
    return small_cube()


@pytest.mark.parametrize("fn", FILTERS)
def test_numpy_output_contract(cube, fn):
    data, wl, fw = cube
    out = fn(data, wl, fw)
    assert out.shape == data.shape[1:] and out.dtype == np.float32
    assert np.isfinite(out).all()


@pytest.mark.parametrize("fn", FILTERS)
def test_channel_axis_dask_memmap_and_full_cube_agree(cube, fn, tmp_path):
    import dask.array as da

    fn = quick(fn)
    data, wl, fw = cube
    ref = fn(data, wl, fw)
    hwc = np.ascontiguousarray(data.transpose(1, 2, 0))
    np.testing.assert_allclose(fn(hwc, wl, fw, channel_axis=-1), ref, rtol=1e-4, atol=1e-3)
    lazy = da.from_array(hwc, chunks=(7, 11, -1))
    np.testing.assert_allclose(fn(lazy, wl, fw, channel_axis=2), ref, rtol=1e-4, atol=1e-3)
    mm = np.lib.format.open_memmap(tmp_path / "cube.npy", mode="w+", dtype=np.float32, shape=data.shape)
    mm[:] = data
    np.testing.assert_allclose(fn(mm, wl, fw), ref, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("fn", FILTERS)
def test_negative_strides_are_read(cube, fn):
    """A flipped view (negative strides, e.g. ``cube[:, :, ::-1]``) gives the flipped result."""
    fn = quick(fn)
    data, wl, fw = cube
    flipped = fn(data[:, ::-1, ::-1], wl, fw)
    np.testing.assert_allclose(flipped, fn(np.ascontiguousarray(data[:, ::-1, ::-1]), wl, fw), rtol=1e-5, atol=1e-4)


def test_window_selects_bands_from_a_full_cube():
    full, wl, fw = small_cube(full=True)
    window = (wl >= 2122) & (wl <= 2488)
    a = mag1c(full, wl, fw, num_iter=5)
    b = mag1c(full[window], wl[window], fw[window], num_iter=5)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-3)
    picked = select_bands(wl, 20, "highest-variance", fwhm=fw)
    c = matched_filter(full, wl, fw, bands=picked, group="tile")
    d = matched_filter(full[picked], wl[picked], fw[picked], window=None, group="tile")
    np.testing.assert_allclose(c, d, rtol=1e-5, atol=1e-3)


def test_xarray_in_dataarray_out(cube):
    import xarray as xr

    data, wl, fw = cube
    arr = xr.DataArray(
        data.transpose(1, 2, 0),
        dims=("y", "x", "wavelength"),
        coords={"wavelength": wl, "fwhm": ("wavelength", fw), "y": np.arange(data.shape[1]) * 60.0},
    )
    out = matched_filter(arr)
    assert isinstance(out, xr.DataArray) and out.dims == ("y", "x")
    assert out.attrs["units"] == "ppm·m"
    np.testing.assert_allclose(out.values, matched_filter(data, wl, fw), rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(out["y"].values, arr["y"].values)
    enh, albedo = mag1c(arr, return_albedo=True, num_iter=3)
    assert isinstance(albedo, xr.DataArray) and albedo.shape == enh.shape


@pytest.mark.parametrize("fn", FILTERS)
def test_invalid_pixels_are_nan_and_do_not_change_statistics(cube, fn):
    data, wl, fw = cube
    fn = quick(fn) if fn in (mag1c, mag1c_sas) else fn
    ref = fn(data, wl, fw, group="tile") if fn is matched_filter else fn(data, wl, fw)
    mask = np.zeros(data.shape[1:], bool)
    mask[2, 3] = True
    # replace four pixels by garbage (fill, NaN, all-zero, masked outlier): results elsewhere must not move
    dirty = data.copy()
    dirty[:, 0, 0] = -9999.0
    dirty[5, 1, 1] = np.inf
    dirty[:, 1, 2] = 0.0
    dirty[:, 2, 3] = 1e6
    if fn is not matched_filter and fn is not ace:
        ref = None  # checked against references with pixels removed in test_methane_equivalence
    out = fn(dirty, wl, fw, mask=mask, group="tile") if fn is matched_filter else fn(dirty, wl, fw, mask=mask)
    bad = np.zeros_like(mask)
    bad[0, 0] = bad[1, 1] = bad[1, 2] = bad[2, 3] = True
    assert np.array_equal(np.isnan(out), bad)
    if ref is not None:
        # tile statistics over 1196 instead of 1200 pixels: results agree closely, not exactly
        np.testing.assert_allclose(out[~bad], ref[~bad], atol=0.05 * np.nanstd(ref) + 1e-6)


def test_channel_mismatch_and_bad_wavelengths(cube):
    data, wl, fw = cube
    with pytest.raises(ChannelMismatchError, match="bands"):
        mag1c(data, wl[:-1], fw[:-1])
    bad = wl.copy()
    bad[3] = np.nan
    with pytest.raises(InvalidParameterError, match="finite"):
        matched_filter(data, bad, fw)
    with pytest.raises(InvalidParameterError, match="window"):
        cem(data, wl, fw, window=(1000, 1010))
    with pytest.raises(InvalidParameterError, match="required"):
        ace(data)
    with pytest.raises(InvalidParameterError):
        matched_filter(data, wl, fw, group="rows")
    with pytest.raises(InvalidParameterError):
        matched_filter(data, wl, fw, mask=np.zeros((3, 3), bool))
    with pytest.raises(InvalidParameterError, match="stats_mask"):
        mag1c(data, wl, fw, stats_mask=np.zeros((3, 3), bool))


def test_device_argument_is_parsed_and_checked():
    import torch

    from hyperplex.geo.methane.grouping import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(InvalidParameterError, match="device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(InvalidParameterError, match="CUDA is not available"):
            mag1c(np.ones((49, 4, 4), np.float32), WL[:49], FWHM[:49], window=None, device="cuda")


@pytest.mark.parametrize("fn", FILTERS)
def test_all_invalid_scene_raises(cube, fn):
    data, wl, fw = cube
    with pytest.raises(NoValidDataError):
        fn(np.full_like(data, -9999.0), wl, fw)
    with pytest.raises(NoValidDataError):
        fn(data, wl, fw, mask=np.ones(data.shape[1:], bool))
    with pytest.raises(NoValidDataError, match="stats_mask"):
        fn(data, wl, fw, stats_mask=np.ones(data.shape[1:], bool))


@pytest.mark.parametrize("fn", FILTERS)
def test_stats_mask_keeps_a_plume_out_of_the_statistics(fn):
    """A strong plume inside the statistics biases the background mean and covariance: its enhancement (or
    score) comes out low. With the plume in ``stats_mask`` it is still filtered, from plume-free statistics,
    and comes out higher; enhancements get closer to the truth (3000 ppm·m peak; albedo near 1, which the
    classic matched filter does not correct)."""
    data, wl, fw = small_cube(lines=40, samples=30, seed=1, albedo_range=(0.9, 1.1), sigma=4.0)
    yy, xx = np.mgrid[:40, :30]
    truth = 3000 * np.exp(-((yy - 20) ** 2 + (xx - 15) ** 2) / (2 * 4.0**2))
    plume = truth > 100
    kwargs = {"group": "tile"} if fn in (matched_filter, mag1c) else {}
    inside = fn(data, wl, fw, **kwargs)
    outside = fn(data, wl, fw, stats_mask=plume, **kwargs)
    assert np.isfinite(outside).all()  # stats_mask pixels are filtered
    core = truth > 1500
    assert outside[core].mean() > inside[core].mean()
    if fn not in (cem, ace):  # enhancements in ppm·m: closer to the truth
        assert abs(outside[core].mean() / truth[core].mean() - 1) < abs(inside[core].mean() / truth[core].mean() - 1)
        assert outside[core].mean() == pytest.approx(truth[core].mean(), rel=0.1)


def test_small_groups_fall_back_to_shrinkage_with_warning():
    data, wl, fw = small_cube(lines=20, samples=4)  # 20 pixels per column < 49 bands
    with pytest.warns(RuntimeWarning, match="fewer valid pixels than bands"):
        out = matched_filter(data, wl, fw)
    assert np.isfinite(out).all() and np.abs(out).max() > 0
    with pytest.warns(RuntimeWarning, match="fewer valid pixels than bands"):
        out = mag1c(data, wl, fw, num_iter=3)
    assert np.isfinite(out).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        matched_filter(data, wl, fw, shrinkage=0.5)  # enough shrinkage requested: no fallback, no warning


def test_select_bands_strategies():
    picked = select_bands(WL, 10, "highest-transmittance", fwhm=FWHM)
    inside = np.flatnonzero((WL >= 2122) & (WL <= 2488))
    t = np.abs(target_spectrum(WL, FWHM))
    assert set(picked) <= set(inside) and picked.size == 10
    assert t[picked].min() >= np.sort(t[inside])[-10]
    even = select_bands(WL, 5, "evenly-spaced")
    assert even[0] == inside[0] and even[-1] == inside[-1] and np.all(np.diff(even) > 0)
    spread = select_bands(WL, 6, "highest-variance", fwhm=FWHM)
    assert np.argmax(t[inside]) + inside[0] in spread
    vals = np.sort(t[spread])
    assert np.min(np.diff(vals)) > 0.01  # spread out, not clustered
    with pytest.raises(InvalidParameterError):
        select_bands(WL, 500, "evenly-spaced")
    with pytest.raises(InvalidParameterError):
        select_bands(WL, 5, "random")
