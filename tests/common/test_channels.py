from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from hyperplex.common import ChannelMismatchError, ChannelSet, HyperplexError, InvalidParameterError

WL = [450.0, 550.0, 650.0, 2300.0]


def test_from_wavelengths_names_and_lookup():
    cs = ChannelSet.from_wavelengths(WL, [10.0] * 4)
    assert cs.names == ("450.0 nm", "550.0 nm", "650.0 nm", "2300.0 nm")
    assert cs.is_spectral and len(cs) == 4
    assert cs.nearest(2290) == 3 and cs.index(540.0) == 1 and cs.index("650.0 nm") == 2
    np.testing.assert_array_equal(cs.window(500, 700), [1, 2])


def test_micrometres_convert_to_nm():
    cs = ChannelSet.from_wavelengths([0.45, 2.3], [0.01, 0.01], units="µm")
    np.testing.assert_allclose(cs.wavelengths, [450.0, 2300.0])
    np.testing.assert_allclose(cs.fwhm, [10.0, 10.0])


def test_subset_keeps_every_field():
    cs = ChannelSet.from_wavelengths(WL, [1, 2, 3, 4], good=[True, False, True, True])
    sub = cs[[3, 0]]
    assert sub.names == ("2300.0 nm", "450.0 nm")
    np.testing.assert_array_equal(sub.fwhm, [4, 1])
    np.testing.assert_array_equal(sub.good, [True, True])
    assert cs[np.array([False, True, False, False])] == cs[[1]]


@pytest.mark.parametrize("bad", [[450.0, np.nan], [450.0, -1.0], [np.inf, 500.0]])
def test_bad_wavelengths_raise(bad):
    with pytest.raises(InvalidParameterError, match="wavelengths"):
        ChannelSet.from_wavelengths(bad)


def test_length_mismatch_raises_with_both_counts():
    with pytest.raises(ChannelMismatchError, match="3 names but 2"):
        ChannelSet(("a", "b", "c"), wavelengths=[1.0, 2.0])


@pytest.mark.parametrize(
    "value",
    [WL, np.array(WL), ChannelSet.from_wavelengths(WL), ChannelSet.from_wavelengths(WL).to_dict()],
)
def test_coerce_spectral(value):
    assert ChannelSet.coerce(value, 4) == ChannelSet.from_wavelengths(WL)


def test_coerce_names_and_count_check():
    cs = ChannelSet.coerce(["DAPI", "CD3"], 2)
    assert cs.names == ("DAPI", "CD3") and not cs.is_spectral
    with pytest.raises(ChannelMismatchError, match="describes 2 channels but the data has 3"):
        ChannelSet.coerce(["DAPI", "CD3"], 3)
    with pytest.raises(InvalidParameterError, match="mixes names and numbers"):
        ChannelSet.coerce(["DAPI", 500.0])
    with pytest.raises(HyperplexError):
        ChannelSet.coerce("DAPI")


def test_marker_lookup_errors_clearly():
    cs = ChannelSet.from_names(["DAPI", "CD3"])
    with pytest.raises(ChannelMismatchError, match="needs band wavelengths"):
        cs.nearest(500)
    with pytest.raises(ChannelMismatchError, match="No channel named 'CD8'"):
        cs.index("CD8")


def test_xarray_round_trip():
    cs = ChannelSet.from_wavelengths(WL, [5.0] * 4, good=[True, True, False, True])
    da = xr.DataArray(np.zeros((4, 2, 2)), dims=("band", "y", "x"), coords=cs.to_xarray_coords("band"))
    assert ChannelSet.from_xarray(da) == cs
    assert ChannelSet.coerce(da) == cs


def test_xarray_wavelength_dimension_in_micrometres():
    da = xr.DataArray(np.zeros((2, 3)), dims=("wavelength", "x"), coords={"wavelength": ("wavelength", [0.5, 2.3],
                      {"units": "micrometers"})})  # fmt: skip
    np.testing.assert_allclose(ChannelSet.from_xarray(da).wavelengths, [500.0, 2300.0])


def test_json_round_trip():
    cs = ChannelSet.from_wavelengths(WL, [5.0] * 4)
    assert ChannelSet.from_dict(__import__("json").loads(cs.to_json())) == cs


def test_errors_inherit_builtins():
    assert issubclass(ChannelMismatchError, ValueError) and issubclass(ChannelMismatchError, HyperplexError)
