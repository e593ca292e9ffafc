"""The CH4 absorption look-up table shipped in the ``mag1c`` wheel, and band convolution of it.

``ch4.lut``/``ch4.hdr`` (ENVI, 7 samples x 31800 bands, float64) hold at-sensor radiance spectra at
0.1 cm-1 resolution (1399.6-2522.0 nm) for CH4 enhancements of 0, 500, 1000, 2000, 4000, 8000 and
16000 ppm·m. The files are located through the package's import spec, so none of mag1c's code runs.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hyperplex.common.errors import DataNotFoundError, InvalidParameterError

__all__ = ["CH4_LUT_CONCENTRATIONS", "CH4Lut", "band_response", "ch4_lut_dir", "load_ch4_lut"]

#: Enhancements of the LUT's 7 samples, ppm·m (fixed by the table's construction).
CH4_LUT_CONCENTRATIONS = np.array([0.0, 500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0])


@dataclass(frozen=True)
class CH4Lut:
    """The CH4 radiance LUT.

    Attributes:
        wavelengths: LUT wavelength grid in nm, shape (n,).
        concentrations: CH4 enhancement per row in ppm·m, shape (7,).
        radiance: At-sensor radiance per concentration, shape (7, n).
    """

    wavelengths: np.ndarray
    concentrations: np.ndarray
    radiance: np.ndarray

    def convolve(self, centers_nm: np.ndarray, fwhm_nm: np.ndarray) -> np.ndarray:
        """Band-averaged LUT radiance for a sensor, shape (7, B) (zeros for bands outside the LUT)."""
        return self.radiance @ band_response(self.wavelengths, centers_nm, fwhm_nm)


def ch4_lut_dir() -> Path:
    """Directory holding ``ch4.hdr`` and ``ch4.lut`` from the installed ``mag1c`` distribution.

    Raises:
        DataNotFoundError: If mag1c is not installed or lacks the LUT files.
    """
    spec = importlib.util.find_spec("mag1c")  # locates the package without executing it
    if spec is None or not spec.submodule_search_locations:
        raise DataNotFoundError(
            "The CH4 absorption LUT comes from the `mag1c` wheel, which is not installed; "
            "run `pip install mag1c==1.2.0`."
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    for name in ("ch4.hdr", "ch4.lut"):
        if not (folder / name).is_file():
            raise DataNotFoundError(f"{folder / name} is missing; reinstall the `mag1c` wheel.")
    return folder


@functools.lru_cache(maxsize=1)
def load_ch4_lut() -> CH4Lut:
    """Read the CH4 LUT with ``spectral`` (cached; about 2 MB).

    Returns:
        The LUT.
    """
    import spectral.io.envi as envi

    folder = ch4_lut_dir()
    image = envi.open(str(folder / "ch4.hdr"), str(folder / "ch4.lut"))
    radiance = np.asarray(image.asarray(), dtype=np.float64).reshape(-1, image.shape[-1])  # (7, n)
    wavelengths = np.asarray(image.bands.centers, dtype=np.float64)
    if radiance.shape != (CH4_LUT_CONCENTRATIONS.size, wavelengths.size):
        raise DataNotFoundError(f"{folder / 'ch4.lut'} has shape {radiance.shape}; expected (7, n). Reinstall mag1c.")
    radiance.setflags(write=False)
    wavelengths.setflags(write=False)
    return CH4Lut(wavelengths, CH4_LUT_CONCENTRATIONS.copy(), radiance)


def band_response(grid_nm: np.ndarray, centers_nm: np.ndarray, fwhm_nm: np.ndarray) -> np.ndarray:
    """Gaussian spectral response functions sampled on ``grid_nm``, each normalised to sum to 1.

    Bands whose response vanishes on the whole grid keep all-zero weights.

    Args:
        grid_nm: Fine wavelength grid, shape (n,).
        centers_nm: Band centres, shape (B,).
        fwhm_nm: Band full widths at half maximum, shape (B,).

    Returns:
        Weights, shape (n, B).

    Raises:
        InvalidParameterError: For mismatched lengths or non-finite / non-positive inputs.
    """
    centers = np.asarray(centers_nm, dtype=np.float64)
    fwhm = np.asarray(fwhm_nm, dtype=np.float64)
    if centers.ndim != 1 or centers.shape != fwhm.shape:
        raise InvalidParameterError(
            f"`wavelengths` and `fwhm` must be 1-D and equally long; got {centers.shape} and {fwhm.shape}."
        )
    if not (np.all(np.isfinite(centers)) and np.all(np.isfinite(fwhm)) and np.all(fwhm > 0)):
        raise InvalidParameterError("`wavelengths` and `fwhm` must be finite, and `fwhm` positive (nm).")
    var = (fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))) ** 2
    response = np.exp(-((grid_nm[:, None] - centers[None, :]) ** 2) / (2 * var)) / np.sqrt(2 * np.pi * var)
    total = response.sum(axis=0)
    np.divide(response, total, where=total > 0, out=response)
    return response
