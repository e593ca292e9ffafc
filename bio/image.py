"""The in-memory handle of an opened microscopy image: lazy pyramid levels plus channel identity."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np

from hyperplex.bio.pyramid import level_factor
from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import ChannelMismatchError, InvalidParameterError

__all__ = ["MultiscaleImage"]


@dataclass
class MultiscaleImage:
    """A multichannel image as lazy pyramid levels, finest first; nothing is read until computed.

    Args:
        levels: Dask arrays ``(C, Y, X)``, level 0 the full resolution, each next level smaller.
        channels: One entry per channel (marker names, colours, wavelengths where known).
        pixel_size_um: Level-0 pixel size ``(y, x)`` in micrometres, or None if the file does not say.
        path: The file or store it came from (None for in-memory images).
        format: ``"ome-tiff"``, ``"ome-zarr"``, ``"tiff-stack"`` or ``"memory"``.
        metadata: Format details (e.g. ``{"ngff_version": "0.5"}``).

    Raises:
        InvalidParameterError: If there are no levels or a level is not 3-D.
        ChannelMismatchError: If the levels' channel counts differ from each other or from ``channels``.
    """

    levels: list[da.Array]
    channels: ChannelSet
    pixel_size_um: tuple[float, float] | None = None
    path: Path | None = None
    format: str = "memory"
    metadata: dict[str, Any] = field(default_factory=dict)
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = str(self.path) if self.path is not None else "image"
        if not self.levels:
            raise InvalidParameterError(f"{where}: a MultiscaleImage needs at least one level.")
        self.levels = [lvl if isinstance(lvl, da.Array) else da.asarray(lvl) for lvl in self.levels]
        for i, lvl in enumerate(self.levels):
            if lvl.ndim != 3:
                raise InvalidParameterError(f"{where}: level {i} has shape {lvl.shape}; expected (C, Y, X).")
            if lvl.shape[0] != len(self.channels):
                raise ChannelMismatchError(
                    f"{where}: level {i} has {lvl.shape[0]} channels but the metadata names {len(self.channels)} "
                    f"({', '.join(list(self.channels)[:5])}); the file's channel metadata does not match its pixels."
                )
        if self.pixel_size_um is not None:
            self.pixel_size_um = (float(self.pixel_size_um[0]), float(self.pixel_size_um[1]))
        if self.path is not None:
            self.path = Path(self.path)

    # ------------------------------------------------------------------ shape
    @property
    def shape(self) -> tuple[int, int, int]:
        """Full-resolution shape ``(C, Y, X)``."""
        return tuple(self.levels[0].shape)  # type: ignore[return-value]

    @property
    def dtype(self) -> np.dtype:
        """Pixel data type."""
        return self.levels[0].dtype

    @property
    def data(self) -> da.Array:
        """The full-resolution level (lazy)."""
        return self.levels[0]

    @property
    def n_levels(self) -> int:
        """Number of pyramid levels."""
        return len(self.levels)

    def level_pixel_size(self, level: int) -> tuple[float, float] | None:
        """Pixel size ``(y, x)`` in µm at ``level`` (level 0 size times the downsampling factor)."""
        if self.pixel_size_um is None:
            return None
        _, h0, w0 = self.levels[0].shape
        _, h, w = self.levels[level].shape
        # pyramids trim odd edges, so 530 -> 265 -> 132: the factor is the rounded ratio, not the exact one
        return (self.pixel_size_um[0] * level_factor(h0, h), self.pixel_size_um[1] * level_factor(w0, w))

    # ------------------------------------------------------------------ conversions
    def to_xarray(self, level: int = 0) -> Any:
        """The level as a lazy ``xarray.DataArray`` with dims ``(c, y, x)``.

        Channel names (and colours/wavelengths) become coordinates along ``c``; ``y`` and ``x`` are in µm
        (pixel centres) when the pixel size is known, else in pixels.

        Args:
            level: Pyramid level, 0 = full resolution.

        Returns:
            The DataArray; ``attrs`` holds ``pixel_size_um``, ``path``, ``format`` and ``level``.
        """
        import xarray as xr

        arr = self.levels[level]
        size = self.level_pixel_size(level)
        sy, sx = size if size is not None else (1.0, 1.0)
        coords = self.channels.to_xarray_coords(dim="c")
        coords["y"] = ("y", (np.arange(arr.shape[1]) + 0.5) * sy, {"units": "µm" if size else "pixel"})
        coords["x"] = ("x", (np.arange(arr.shape[2]) + 0.5) * sx, {"units": "µm" if size else "pixel"})
        attrs = {"pixel_size_um": size, "path": None if self.path is None else str(self.path)}
        attrs |= {"format": self.format, "level": level, "channels": self.channels.to_json()}
        return xr.DataArray(arr, dims=("c", "y", "x"), coords=coords, attrs=attrs, name=self._name())

    def _name(self) -> str:
        if self.path is None:
            return "image"
        name = self.path.name
        for suffix in (".ome.tiff", ".ome.tif", ".ome.zarr", ".tiff", ".tif", ".zarr"):
            if name.lower().endswith(suffix):
                return name[: -len(suffix)]
        return name

    # ------------------------------------------------------------------ resources
    def close(self) -> None:
        """Close open file handles (reading a level afterwards reopens the file where the format allows)."""
        while self._closers:
            self._closers.pop()()

    def __enter__(self) -> MultiscaleImage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
