"""The input of the learned plume segmenters: standardised log radiance of the CH4 window bands.

Training tiles (:mod:`hyperplex.geo.methane.plume_tiles`) and detection (:mod:`hyperplex.geo.methane.learned`)
compute it with the same function, from the whole scene, so a model sees the same statistics at both ends:

1. ``log L`` of the bands in :data:`PLUME_WINDOW_NM` (2122-2488 nm, Mag1c's default window);
2. minus, per band and detector column, the mean over the column's valid pixels (like Mag1c's
   column-wise mean: removes detector-column gain differences and the scene's mean spectrum);
3. divided, per band, by the standard deviation of the result over all valid pixels;
4. 0 where a pixel is invalid (fill, masked).

No statistics from the training set are needed at inference, so a shipped model file is self-contained.
"""

from __future__ import annotations

import numpy as np

from hyperplex.common.errors import InvalidParameterError

__all__ = ["PLUME_WINDOW_NM", "plume_features", "window_bands"]

#: Wavelength window (nm) of the learned models' input bands.
PLUME_WINDOW_NM = (2122.0, 2488.0)
_TINY = 1e-6  # radiance floor before the logarithm


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


def plume_features(cube: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Standardised log radiance (see the module docstring) of a channel-first cube.

    Args:
        cube: (C, H, W) radiance of the window bands; fill values (<= 0) and NaN are invalid.
        valid: Optional (H, W) pixels to use (False: masked); combined with the cube's own validity.

    Returns:
        (C, H, W) float32 features, 0 at invalid pixels.

    Raises:
        InvalidParameterError: On a cube that is not (C, H, W) or a mask of another shape.
    """
    if cube.ndim != 3:
        raise InvalidParameterError(f"`cube` must be (bands, lines, samples); got shape {cube.shape}.")
    x = np.asarray(cube, dtype=np.float32)
    ok = np.all(np.isfinite(x) & (x > 0), axis=0)
    if valid is not None:
        if valid.shape != ok.shape:
            raise InvalidParameterError(f"`valid` must have shape {ok.shape}; got {valid.shape}.")
        ok &= valid
    with np.errstate(invalid="ignore"):
        logs = np.where(ok, np.log(np.maximum(x, _TINY)), np.float32(0.0))
    count = ok.sum(axis=0)  # valid pixels per column
    col_mean = logs.sum(axis=1) / np.maximum(count, 1)  # (C, W)
    logs -= col_mean[:, None, :]
    logs *= ok
    std = np.sqrt((logs.astype(np.float64) ** 2).sum(axis=(1, 2)) / max(int(ok.sum()), 1))
    logs /= np.where(std > 0, std, 1.0).astype(np.float32)[:, None, None]
    return logs
