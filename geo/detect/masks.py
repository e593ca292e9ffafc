"""Scene masks for methane detection: fill, saturation, flares, dark surfaces, EMIT L2A flags.

Each is a boolean ``(lines, samples)`` array, True where a pixel must stay out of the filter
statistics and out of the enhancement map. They are computed chunk by chunk while the bands are read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hyperplex.common.errors import DataNotFoundError, FileFormatError
from hyperplex.geo.detect.config import MaskConfig
from hyperplex.geo.image_ops import dilate_disk

__all__ = ["SceneMasks", "read_l2a_mask"]


@dataclass
class SceneMasks:
    """The masks of one scene, filled row chunk by row chunk, finalised with :meth:`finish`."""

    shape: tuple[int, int]
    layers: dict[str, np.ndarray] = field(default_factory=dict)
    brightness: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("fill", "saturated", "flare", "dark", "l2a"):
            self.layers.setdefault(name, np.zeros(self.shape, dtype=bool))
        self.brightness = np.full(self.shape, np.nan, dtype=np.float32)

    def update(self, rows: slice, filt: np.ndarray, sat: np.ndarray, flare_band: np.ndarray, cfg: MaskConfig) -> None:
        """Record one chunk: filter bands, saturation-window bands and the 2389 nm band."""
        fill = ~np.isfinite(filt).all(axis=0) | ~filt.any(axis=0)  # NaN counts as "any": caught by isfinite
        self.layers["fill"][rows] = fill
        with np.errstate(invalid="ignore", over="ignore"):
            # fmax skips NaN without nanmax's copy of the block; all-NaN pixels stay at -inf
            self.layers["saturated"][rows] = np.fmax.reduce(sat, axis=0, initial=-np.inf) > cfg.saturation_threshold
            self.layers["flare"][rows] = flare_band > cfg.flare_threshold
            mean = filt.mean(axis=0)  # = nanmean wherever ``fill`` is False (every band finite there)
        self.brightness[rows] = np.where(fill, np.nan, mean)

    def finish(self, cfg: MaskConfig) -> None:
        """Dilate, find dark surfaces relative to the scene median, add the L2A flags."""
        self.layers["saturated"] = dilate_disk(self.layers["saturated"], cfg.saturation_dilate)
        self.layers["flare"] = dilate_disk(self.layers["flare"], cfg.flare_dilate)
        bright = self.brightness[np.isfinite(self.brightness)]
        if bright.size:
            with np.errstate(invalid="ignore"):
                dark = self.brightness < cfg.dark_fraction * float(np.median(bright))
            self.layers["dark"] = dilate_disk(dark, cfg.dark_dilate) & ~self.layers["fill"]
        if cfg.l2a_mask:
            self.layers["l2a"] = read_l2a_mask(cfg.l2a_mask, self.shape)

    @property
    def excluded(self) -> np.ndarray:
        """Union of all masks."""
        out = np.zeros(self.shape, dtype=bool)
        for layer in self.layers.values():
            out |= layer
        return out

    def counts(self) -> dict[str, int]:
        """Pixels per mask, for run.json."""
        return {name: int(layer.sum()) for name, layer in self.layers.items()}


def read_l2a_mask(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """Cloud, cirrus and water flags (bands 0-2) of an EMIT L2A MASK granule, as one boolean mask.

    Raises:
        DataNotFoundError: If the file does not exist.
        FileFormatError: If it lacks the ``mask`` variable or its size differs from the scene.
    """
    import h5py

    p = Path(path)
    if not p.is_file():
        raise DataNotFoundError(f"{p}: L2A mask file not found (--l2a-mask).")
    with h5py.File(p, "r") as f:
        if "mask" not in f:
            raise FileFormatError(f"{p}: no 'mask' variable; pass an EMIT_L2A_MASK granule to --l2a-mask.")
        flags = f["mask"][:, :, :3]
    if flags.shape[:2] != shape:
        raise FileFormatError(f"{p}: mask is {flags.shape[:2]} but the radiance is {shape}; use the matching granule.")
    return np.nan_to_num(flags, nan=0.0).sum(axis=-1) > 0
