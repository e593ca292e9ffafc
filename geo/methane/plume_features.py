"""The input of the learned plume segmenters: standardised log radiance of the CH4 window bands plus a matched filter.

Training tiles (:mod:`hyperplex.geo.methane.plume_tiles`) and detection (:mod:`hyperplex.geo.methane.learned`)
compute it with the same function, from the whole scene, so a model sees the same statistics at both ends.
Channels (:func:`feature_channels`), for the bands in :data:`PLUME_WINDOW_NM` (2122-2488 nm, Mag1c's window):

1. per band: ``log L`` minus, per detector column, the mean over the column's valid pixels (like Mag1c's
   column-wise mean: removes column gains and the scene's mean spectrum), divided by the band's standard
   deviation over the scene;
2. ``mf_snr``: a matched filter on those log radiances, ``(x^T C^-1 k) / sqrt(k^T C^-1 k)`` with the scene's
   band covariance ``C`` and the CH4 unit absorption ``k`` (Beer-Lambert is linear in log radiance, and the
   per-pixel albedo is an additive offset there): a CH4 signal-to-noise ratio, about 0 +- 1 off plumes.

Invalid pixels (fill, NaN, masked) are 0 in every channel and left out of every statistic. No statistics
from the training set are needed at inference, so a shipped model file is self-contained.
"""

from __future__ import annotations

import numpy as np

from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import InvalidParameterError

__all__ = ["MF_CHANNEL", "PLUME_WINDOW_NM", "feature_channels", "plume_features", "window_bands"]

#: Wavelength window (nm) of the learned models' input bands.
PLUME_WINDOW_NM = (2122.0, 2488.0)
#: Name of the matched-filter channel (the last one).
MF_CHANNEL = "mf_snr"
_TINY = 1e-6  # radiance floor before the logarithm
_RIDGE = 1e-6  # covariance regularisation, relative to its mean diagonal


def window_bands(wavelengths: np.ndarray, window: tuple[float, float] = PLUME_WINDOW_NM) -> np.ndarray:
    """Indices of the bands with centres inside ``window`` (nm).

    Raises:
        InvalidParameterError: If fewer than 3 bands fall inside.
    """
    wl = np.asarray(wavelengths, dtype=np.float64)
    idx = np.flatnonzero((wl >= window[0]) & (wl <= window[1]))
    if idx.size < 3:
        raise InvalidParameterError(f"Only {idx.size} bands lie in the window {window} nm; the learned models need "
                                    "the CH4 window bands (EMIT: 49 bands in 2122-2488 nm).")  # fmt: skip
    return idx


def feature_channels(wavelengths: np.ndarray) -> ChannelSet:
    """Channels of :func:`plume_features` for window bands at ``wavelengths``: ``"logL 2122.4 nm"``, ..., ``mf_snr``."""
    names = [f"logL {w:.1f} nm" for w in np.asarray(wavelengths, dtype=np.float64)]
    return ChannelSet.from_names([*names, MF_CHANNEL])


def _centred_logs(x: np.ndarray, ok: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Column-centred log radiance (C, H, W) written into ``out`` (no full-size temporaries), 0 where not ``ok``."""
    with np.errstate(invalid="ignore"):
        np.maximum(x, _TINY, out=out)
        np.log(out, out=out)
    np.copyto(out, np.float32(0.0), where=~ok)
    count = ok.sum(axis=0)
    out -= (out.sum(axis=1) / np.maximum(count, 1))[:, None, :]
    out *= ok
    return out


def _band_sum_squares(logs: np.ndarray) -> np.ndarray:
    """Per band, the float64 sum of squares (one band at a time: no float64 copy of the cube)."""
    return np.array([np.square(band, dtype=np.float64).sum() for band in logs])


def _matched_filter(logs: np.ndarray, ok: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Matched-filter SNR (H, W) of centred log radiance with the scene covariance."""
    flat = logs.reshape(logs.shape[0], -1)
    n = max(int(ok.sum()), 1)
    cov = (flat @ flat.T).astype(np.float64) / n
    cov += _RIDGE * np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0])
    weights = np.linalg.solve(cov, template)
    weights /= np.sqrt(max(float(template @ weights), 1e-30))
    return (weights.astype(np.float32) @ flat).reshape(logs.shape[1:]) * ok


def plume_features(cube: np.ndarray, wavelengths: np.ndarray, fwhm: np.ndarray,
                   valid: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """The learned models' input (see the module docstring) for a channel-first cube of window bands.

    Args:
        cube: (C, H, W) radiance of the window bands; fill values (<= 0) and NaN are invalid.
        wavelengths: Band centres (nm) of the C bands.
        fwhm: Band widths (nm).
        valid: Optional (H, W) pixels to use (False: masked); combined with the cube's own validity.

    Returns:
        (C + 1, H, W) float32: C standardised log bands and the matched-filter SNR; 0 at invalid pixels.

    Raises:
        InvalidParameterError: On a cube that is not (C, H, W), or wavelengths or a mask that do not fit it.
    """
    from hyperplex.geo.methane import target_spectrum

    if cube.ndim != 3 or len(wavelengths) != cube.shape[0]:
        raise InvalidParameterError(f"`cube` must be (bands, lines, samples) with one wavelength per band; got "
                                    f"shape {cube.shape} and {len(wavelengths)} wavelengths.")  # fmt: skip
    x = np.asarray(cube, dtype=np.float32)
    ok = np.all(np.isfinite(x) & (x > 0), axis=0)
    if valid is not None:
        if valid.shape != ok.shape:
            raise InvalidParameterError(f"`valid` must have shape {ok.shape}; got {valid.shape}.")
        ok &= valid
    out = np.empty((x.shape[0] + 1, *x.shape[1:]), dtype=np.float32)
    logs = _centred_logs(x, ok, out[:-1])
    template = np.asarray(target_spectrum(np.asarray(wavelengths), np.asarray(fwhm)), dtype=np.float64)
    out[-1] = _matched_filter(logs, ok, template)
    std = np.sqrt(_band_sum_squares(logs) / max(int(ok.sum()), 1))
    logs /= np.where(std > 0, std, 1.0).astype(np.float32)[:, None, None]
    return out
