"""The CH4 absorption look-up table shipped in the ``mag1c`` wheel, and band convolution of it.

``ch4.lut``/``ch4.hdr`` (ENVI, 7 samples x 31800 bands, float64) hold at-sensor radiance spectra at
0.1 cm-1 resolution (1399.6-2522.0 nm) for CH4 enhancements of 0, 500, 1000, 2000, 4000, 8000 and
16000 ppm·m. The files are located through the package's import spec, so none of mag1c's code runs.
"""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hyperplex.common.errors import DataNotFoundError, InvalidParameterError

__all__ = [
    "CH4_LUT_CONCENTRATIONS",
    "CH4Lut",
    "band_average",
    "band_response",
    "ch4_lut_dir",
    "load_ch4_lut",
    "read_lut_header",
]

#: ``key = value`` or ``key = { ... }`` (possibly over many lines) in an ENVI header.
_HEADER_FIELD = re.compile(r"^\s*([A-Za-z][^=\n]*?)\s*=\s*(\{[^}]*\}|[^\n]*)", re.MULTILINE)

#: ENVI data type codes of floats.
_ENVI_FLOATS = {4: "f4", 5: "f8"}

#: A band's Gaussian response is evaluated within this many standard deviations of its centre (exp(-32) beyond).
_SUPPORT_SIGMAS = 8.0

#: exp(-z**2 / 2) is 0 in float64 beyond z = 38.6: no weight at all (mag1c's dense computation gives 0 too).
_UNDERFLOW_SIGMAS = 38.7

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
        return band_average(self.radiance, self.wavelengths, centers_nm, fwhm_nm)


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
    """Read the CH4 LUT (cached; about 2 MB): the ENVI header's fields and ``np.fromfile``.

    The table's layout is fixed (7 samples, 1 line, BSQ, float64); anything else is refused rather than
    guessed. (``spectral`` reads it too, 4x slower: its header parser was most of a fresh process's first
    Mag1c call.)

    Returns:
        The LUT.

    Raises:
        DataNotFoundError: If the files are missing or not the expected table.
    """
    folder = ch4_lut_dir()
    header = read_lut_header(folder / "ch4.hdr")
    wavelengths = header["wavelength"]
    count = CH4_LUT_CONCENTRATIONS.size * wavelengths.size
    data = np.fromfile(folder / "ch4.lut", dtype=header["dtype"], count=count, offset=header["offset"])
    if data.size != count:
        raise DataNotFoundError(f"{folder / 'ch4.lut'} holds {data.size} values; expected {count}. Reinstall mag1c.")
    radiance = np.ascontiguousarray(data.reshape(wavelengths.size, CH4_LUT_CONCENTRATIONS.size).T, dtype=np.float64)
    radiance.setflags(write=False)
    wavelengths.setflags(write=False)
    return CH4Lut(wavelengths, CH4_LUT_CONCENTRATIONS.copy(), radiance)


def read_lut_header(path: Path) -> dict[str, Any]:
    """The fields of the LUT's ENVI header this module needs, checked against the table's fixed layout.

    Args:
        path: ``ch4.hdr``.

    Returns:
        ``wavelength`` (float64 nm), ``dtype`` (numpy, with byte order) and ``offset`` (bytes).

    Raises:
        DataNotFoundError: If a field is missing or the layout is not 7 samples x 1 line x n bands, BSQ, float.
    """
    text = path.read_text(encoding="ascii", errors="replace")
    fields = {k.strip().lower(): v.strip() for k, v in _HEADER_FIELD.findall(text)}
    try:
        wavelengths = np.array(fields["wavelength"].strip("{}").split(","), dtype=np.float64)
        layout = (int(fields["samples"]), int(fields["lines"]), int(fields["bands"]), fields["interleave"].lower())
        dtype = np.dtype(_ENVI_FLOATS[int(fields["data type"])]).newbyteorder(
            ">" if fields.get("byte order") == "1" else "<"
        )
        offset = int(fields.get("header offset", "0"))
    except (KeyError, ValueError) as exc:
        raise DataNotFoundError(f"{path}: unreadable LUT header ({exc}); reinstall the `mag1c` wheel.") from None
    if layout != (CH4_LUT_CONCENTRATIONS.size, 1, wavelengths.size, "bsq"):
        raise DataNotFoundError(f"{path}: layout {layout} is not the CH4 LUT's (7, 1, n, 'bsq'); reinstall mag1c.")
    return {"wavelength": wavelengths, "dtype": dtype, "offset": offset}


def band_response(grid_nm: np.ndarray, centers_nm: np.ndarray, fwhm_nm: np.ndarray) -> np.ndarray:
    """Gaussian spectral response functions sampled on ``grid_nm``, each normalised to sum to 1.

    A response is evaluated within 8 standard deviations of its centre (beyond, it is below 1e-14 of its
    peak), or on the whole grid where that support reaches past its ends; bands whose response vanishes on
    the whole grid keep all-zero weights.

    Args:
        grid_nm: Fine wavelength grid, increasing, shape (n,).
        centers_nm: Band centres, shape (B,).
        fwhm_nm: Band full widths at half maximum, shape (B,).

    Returns:
        Weights, shape (n, B).

    Raises:
        InvalidParameterError: For mismatched lengths or non-finite / non-positive inputs.
    """
    grid = np.asarray(grid_nm, dtype=np.float64)
    response = np.zeros((grid.size, np.size(centers_nm)))
    for band, support, weights in _band_supports(grid, centers_nm, fwhm_nm):
        response[support, band] = weights
    return response


def band_average(values: np.ndarray, grid_nm: np.ndarray, centers_nm: np.ndarray, fwhm_nm: np.ndarray) -> np.ndarray:
    """``values @ band_response(grid_nm, centers_nm, fwhm_nm)`` without the dense (n, B) matrix.

    Args:
        values: Spectra on the fine grid, shape (..., n).
        grid_nm: Fine wavelength grid, increasing, shape (n,).
        centers_nm: Band centres, shape (B,).
        fwhm_nm: Band full widths at half maximum, shape (B,).

    Returns:
        Band averages, shape (..., B) (zeros for bands without support on the grid).
    """
    values = np.asarray(values, dtype=np.float64)
    out = np.zeros((*values.shape[:-1], np.size(centers_nm)))
    for band, support, weights in _band_supports(np.asarray(grid_nm, dtype=np.float64), centers_nm, fwhm_nm):
        out[..., band] = values[..., support] @ weights
    return out


def _band_supports(
    grid: np.ndarray, centers_nm: np.ndarray, fwhm_nm: np.ndarray
) -> Iterator[tuple[int, slice, np.ndarray]]:
    """Per band: its index, the slice of the grid within 8 sigma of its centre, its normalised weights.

    A band whose 8-sigma support reaches past an end of the grid is weighted over the whole grid (its
    normalised tail, as mag1c's dense computation gives); one whose response underflows everywhere is
    left out (zero weights).
    """
    centers = np.asarray(centers_nm, dtype=np.float64)
    fwhm = np.asarray(fwhm_nm, dtype=np.float64)
    if centers.ndim != 1 or centers.shape != fwhm.shape:
        raise InvalidParameterError(
            f"`wavelengths` and `fwhm` must be 1-D and equally long; got {centers.shape} and {fwhm.shape}."
        )
    if not (np.all(np.isfinite(centers)) and np.all(np.isfinite(fwhm)) and np.all(fwhm > 0)):
        raise InvalidParameterError("`wavelengths` and `fwhm` must be finite, and `fwhm` positive (nm).")
    sigma = fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    lo = np.searchsorted(grid, centers - _SUPPORT_SIGMAS * sigma)
    hi = np.searchsorted(grid, centers + _SUPPORT_SIGMAS * sigma, side="right")
    clipped = (lo == 0) | (hi == grid.size)  # near or past the grid's ends: the tail on the grid, as mag1c
    lo[clipped], hi[clipped] = 0, grid.size
    if grid.size:  # beyond _UNDERFLOW_SIGMAS from the grid every weight is exactly 0 in float64
        gap = np.maximum(grid[0] - centers, centers - grid[-1])
        lo[gap > _UNDERFLOW_SIGMAS * sigma] = grid.size
    for band in range(centers.size):
        weights = np.exp(-0.5 * ((grid[lo[band] : hi[band]] - centers[band]) / sigma[band]) ** 2)
        total = weights.sum()
        if total > 0:
            yield band, slice(int(lo[band]), int(hi[band])), weights / total
