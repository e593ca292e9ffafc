import numpy as np
import pytest

from hyperplex.common.errors import InvalidParameterError
from hyperplex.geo.methane import target_spectrum

EMIT_WL = 381.006 + 7.4363 * np.arange(285)
EMIT_FWHM = np.linspace(8.4, 8.8, 285)


def _mag1c_template(wl, fwhm):
    from mag1c.mag1c import generate_template_from_bands  # reference only, never used by the package

    return generate_template_from_bands(wl, fwhm)[:, 1]


def test_equals_mag1c_on_emit_grid():
    ours = target_spectrum(EMIT_WL, EMIT_FWHM)
    ref = _mag1c_template(EMIT_WL, EMIT_FWHM)
    scale = np.abs(ref).max()
    assert ours.shape == (285,)
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-6 * scale)
    strong = np.abs(ref) > 1e-3 * scale
    np.testing.assert_allclose(ours[strong], ref[strong], rtol=1e-6)


def test_physics_of_the_template():
    t = target_spectrum(EMIT_WL, np.full(285, 8.7))
    assert np.abs(t[EMIT_WL < 1300]).max() <= 1e-9 * np.abs(t).max()  # no CH4 absorption this far from 1.65 um
    assert t.max() <= 1e-12 * np.abs(t).max()  # absorption only: never positive beyond rounding
    window = (EMIT_WL > 2200) & (EMIT_WL < 2450)
    assert EMIT_WL[window][np.argmin(t[window])] == pytest.approx(2345.1, abs=4)
    assert t.min() == pytest.approx(-1.455, abs=0.05)  # methane.md 1.3 (real EMIT grid: -1.455)


def test_other_sensor_grid_matches_mag1c():
    wl = np.linspace(2100, 2500, 60)
    fwhm = np.full(60, 5.0)
    np.testing.assert_allclose(target_spectrum(wl, fwhm), _mag1c_template(wl, fwhm), rtol=1e-6)


@pytest.mark.parametrize(
    ("wl", "fwhm"),
    [([2300.0, 2310.0], [8.0]), ([2300.0, np.nan], [8.0, 8.0]), ([2300.0, 2310.0], [8.0, 0.0]), ([], [])],
)
def test_bad_inputs(wl, fwhm):
    with pytest.raises(InvalidParameterError):
        target_spectrum(np.asarray(wl), np.asarray(fwhm))


def test_band_responses_equal_the_dense_gaussians_everywhere():
    """Windowed responses (8 sigma, whole grid near its ends, none past underflow) equal the dense formula."""
    from hyperplex.geo.ch4lut import band_average, band_response, load_ch4_lut

    lut = load_ch4_lut()
    centers, fwhm = np.linspace(380.0, 2600.0, 300), np.full(300, 8.5)
    var = (fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))) ** 2
    dense = np.exp(-((lut.wavelengths[:, None] - centers) ** 2) / (2 * var))
    total = dense.sum(axis=0)
    np.divide(dense, total, where=total > 0, out=dense)
    windowed = band_response(lut.wavelengths, centers, fwhm)
    np.testing.assert_allclose(windowed, dense, rtol=0, atol=1e-12)
    assert ((windowed.sum(axis=0) > 0) == (total > 0)).all()
    np.testing.assert_allclose(band_average(lut.radiance, lut.wavelengths, centers, fwhm), lut.radiance @ dense,
                               rtol=1e-12, atol=1e-12 * lut.radiance.max())  # fmt: skip
