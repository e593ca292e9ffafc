"""The unit CH4 absorption spectrum ("target") of any sensor, from the CH4 LUT shipped in mag1c's wheel."""

from __future__ import annotations

import functools

import numpy as np

from hyperplex.common.errors import InvalidParameterError
from hyperplex.geo.ch4lut import load_ch4_lut

__all__ = ["TARGET_SCALING", "target_spectrum"]

#: The target is the slope d ln(L)/dc in 1/(ppm·m) times this factor (mag1c's convention), so that a matched
#: filter with target ``t = k * mu`` returns enhancement / 1e5 and the filters multiply by it again.
TARGET_SCALING = 1e5


def target_spectrum(wavelengths_nm: np.ndarray, fwhm_nm: np.ndarray) -> np.ndarray:
    """Unit CH4 absorption spectrum for a sensor with Gaussian spectral responses.

    The LUT's radiance spectra (CH4 enhancements 0-16000 ppm·m) are convolved to the sensor bands, and
    ``ln L = a + k * c`` is fitted per band by least squares over the 7 enhancements. The slope ``k`` is
    returned times 1e5 (mag1c's scaling). Bands outside the LUT (1400-2522 nm) get 0.

    Args:
        wavelengths_nm: Band centres in nm, shape (B,).
        fwhm_nm: Band full widths at half maximum in nm, shape (B,).

    Returns:
        The target, float64, shape (B,); negative where CH4 absorbs.

    Raises:
        InvalidParameterError: For mismatched lengths or non-finite / non-positive values.
    """
    centers = _as_1d(wavelengths_nm, "wavelengths_nm")
    fwhm = _as_1d(fwhm_nm, "fwhm_nm")
    return _cached_target(centers.tobytes(), fwhm.tobytes()).copy()


@functools.lru_cache(maxsize=16)
def _cached_target(centers_bytes: bytes, fwhm_bytes: bytes) -> np.ndarray:
    centers = np.frombuffer(centers_bytes, dtype=np.float64)
    fwhm = np.frombuffer(fwhm_bytes, dtype=np.float64)
    lut = load_ch4_lut()
    radiance = lut.convolve(centers, fwhm)  # (7, B); validates inputs
    log_radiance = np.log(radiance, out=np.zeros_like(radiance), where=radiance > 0)
    conc = lut.concentrations - lut.concentrations.mean()
    slope = conc @ (log_radiance - log_radiance.mean(axis=0)) / (conc @ conc)
    return slope * TARGET_SCALING


def _as_1d(values: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise InvalidParameterError(f"`{name}` must be a non-empty 1-D sequence of nm values; got shape {array.shape}.")
    return array
