"""Generic acquisition nuisances for multiplex training images (before per-channel standardisation).

Synthetic training tissue is clean: every marker where its cell type puts it, no cross-talk, a flat
background. Real slides (and other generators) are not. :func:`add_nuisance` degrades a (C, H, W) image
of non-negative counts with effects every fluorescence microscope has, each with a strength drawn per
image from a range that includes "none", so the clean case is trained too:

- a per-channel gamma (non-linear detector response / display curves);
- spill-over: each channel takes a random fraction of one other random channel (bleed-through);
- a shared autofluorescence: a smooth positive field plus sparse bright granules, added to every channel
  with its own weight;
- optical blur (an isotropic Gaussian);
- shot noise (Poisson at a random photon count per unit of the channel's bright level).

Intensities are handled relative to each channel's 99th percentile (its bright level), so the ranges
mean the same for every channel and image; a global gain per channel is left out because the
standardisation that follows removes it. The effects and their ranges are generic (no generator's
parameters); :class:`Nuisance` documents them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from hyperplex.common.errors import InvalidParameterError

__all__ = ["Nuisance", "add_nuisance"]


@dataclass(frozen=True)
class Nuisance:
    """Ranges of the effects of :func:`add_nuisance` (each drawn uniformly per image or channel).

    Attributes:
        gamma: (low, high) exponent per channel of the intensity relative to its bright level.
        spill: Largest fraction of another channel mixed into each channel.
        background: Largest weight (relative to the bright level) of the shared autofluorescence per channel.
        granules: Fraction of pixels seeding a bright autofluorescent granule.
        blur: Largest Gaussian sigma in pixels.
        photons: (low, high) photons per bright level, drawn log-uniformly per image; None: no shot noise.
    """

    gamma: tuple[float, float] = (0.7, 1.4)
    spill: float = 0.15
    background: float = 0.3
    granules: float = 0.002
    blur: float = 1.5
    photons: tuple[float, float] | None = (10.0, 1000.0)

    def __post_init__(self):
        low, high = self.gamma
        if not 0 < low <= high or min(self.spill, self.background, self.granules, self.blur) < 0:
            raise InvalidParameterError(f"Nuisance ranges must be non-negative (gamma > 0, low <= high); got {self}.")
        if self.photons is not None and not 0 < self.photons[0] <= self.photons[1]:
            raise InvalidParameterError(f"`photons` must be (low, high) with 0 < low <= high; got {self.photons}.")


def _spill(x: np.ndarray, rng: np.random.Generator, most: float) -> np.ndarray:
    """Each channel plus a fraction in [0, most) of one other random channel (from the unmixed input)."""
    c = x.shape[0]
    if c < 2 or most == 0:
        return x
    other = (np.arange(c) + rng.integers(1, c, c)) % c  # never the channel itself
    return x + rng.uniform(0, most, c)[:, None, None] * x[other]


def _autofluorescence(shape: tuple[int, int], rng: np.random.Generator, granules: float) -> np.ndarray:
    """A (H, W) field in [0, ~1]: a smooth positive matrix plus sparse blurred granules."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape), rng.uniform(2, max(shape) / 8), mode="reflect")
    matrix = np.clip(f / (f.std() + 1e-12), 0, None) / 3
    seeds = ndimage.gaussian_filter((rng.random(shape) < granules).astype(float), 1.5)
    return matrix + seeds / (seeds.max() + 1e-12) if seeds.max() > 0 else matrix


def add_nuisance(image: np.ndarray, rng: np.random.Generator, nuisance: Nuisance = Nuisance()) -> np.ndarray:
    """A degraded copy (float32) of a (C, H, W) image of non-negative intensities; see the module docstring.

    Args:
        image: The clean image (counts or any non-negative scale).
        rng: Source of every random draw (same state, same result).
        nuisance: The effects' ranges.

    Returns:
        float32 (C, H, W), on the input's scale (each channel's bright level is kept).

    Raises:
        InvalidParameterError: If ``image`` is not 3-D.
    """
    if np.ndim(image) != 3:
        raise InvalidParameterError(f"add_nuisance takes a (C, H, W) image; got shape {np.shape(image)}.")
    data = np.asarray(image, dtype=np.float64)
    floor = data.min(axis=(1, 2), keepdims=True)
    bright = np.percentile(data - floor, 99, axis=(1, 2), keepdims=True)
    bright = np.where(bright > 0, bright, 1.0)
    x = np.clip((data - floor) / bright, 0, None) ** rng.uniform(*nuisance.gamma, (data.shape[0], 1, 1))
    x = _spill(x, rng, nuisance.spill)
    weights = rng.uniform(0, nuisance.background, (data.shape[0], 1, 1))
    x = x + weights * _autofluorescence(data.shape[1:], rng, nuisance.granules)[None]
    x = ndimage.gaussian_filter(x, (0, *(2 * [rng.uniform(0, nuisance.blur)])))
    if nuisance.photons is not None:
        photons = np.exp(rng.uniform(*np.log(nuisance.photons)))
        x = rng.poisson(x * photons) / photons
    return (x * bright + floor).astype(np.float32)
