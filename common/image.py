"""The one in-memory handle of an opened multichannel image: lazy pyramid levels plus channel identity.

Every reader returns it (microscopy readers directly, hyperspectral cubes through their format's
``open_image``), the napari reader turns it into layer data, and the OME writers accept it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import ChannelMismatchError, InvalidParameterError

__all__ = ["MultiscaleImage", "level_factor"]

_TO_UM = {"micrometer": 1.0, "micron": 1.0, "µm": 1.0, "um": 1.0, "nanometer": 1e-3, "nm": 1e-3,
          "millimeter": 1e3, "mm": 1e3, "centimeter": 1e4, "cm": 1e4, "meter": 1e6, "m": 1e6}  # fmt: skip
_SUFFIXES = (".ome.tiff", ".ome.tif", ".ome.zarr", ".tiff", ".tif", ".zarr", ".nc", ".hdr", ".img")


def level_factor(full: int, reduced: int) -> float:
    """Downsampling factor between a level-0 side and a reduced side.

    Pyramids trim odd edges (530 -> 265 -> 132), so a ratio near an integer is that integer (4, not
    4.015); the pixel size of level ``k`` is then exactly ``2**k`` times the base.
    """
    ratio = full / max(reduced, 1)
    return float(round(ratio)) if ratio >= 1.5 else ratio


@dataclass
class MultiscaleImage:
    """A multichannel image as lazy pyramid levels, finest first; nothing is read until computed.

    Args:
        levels: Arrays ``(C, Y, X)`` (dask, numpy or zarr; kept as given), level 0 the full resolution.
        channels: One entry per channel (marker names, colours, wavelengths where known).
        pixel_size: Level-0 pixel size ``(y, x)`` in ``units``, or None if the file does not say.
        path: The file or store it came from (None for in-memory images).
        format: Registry name of the format it was read from (``"ome-tiff"``, ``"emit"``, ...) or ``"memory"``.
        metadata: Format details (e.g. ``{"ngff_version": "0.5"}``, a CRS); JSON-serialisable where possible.
        units: Unit of ``pixel_size``: ``"micrometer"`` (microscopy), ``"meter"`` or ``"degree"`` (maps).
        name: Display name; defaults to the file name without its format suffix.

    Raises:
        InvalidParameterError: If there are no levels or a level is not 3-D.
        ChannelMismatchError: If the levels' channel counts differ from each other or from ``channels``.
    """

    levels: list[Any]
    channels: ChannelSet
    pixel_size: tuple[float, float] | None = None
    path: Path | None = None
    format: str = "memory"
    metadata: dict[str, Any] = field(default_factory=dict)
    units: str | None = "micrometer"
    name: str | None = None
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = str(self.path) if self.path is not None else "image"
        if not self.levels:
            raise InvalidParameterError(f"{where}: a MultiscaleImage needs at least one level.")
        self.levels = [lvl if hasattr(lvl, "ndim") and hasattr(lvl, "shape") else _dask(lvl) for lvl in self.levels]
        for i, lvl in enumerate(self.levels):
            if lvl.ndim != 3:
                raise InvalidParameterError(f"{where}: level {i} has shape {lvl.shape}; expected (C, Y, X).")
            if lvl.shape[0] != len(self.channels):
                raise ChannelMismatchError(
                    f"{where}: level {i} has {lvl.shape[0]} channels but the metadata names {len(self.channels)} "
                    f"({', '.join(list(self.channels)[:5])}); the file's channel metadata does not match its pixels."
                )
        if self.pixel_size is not None:
            self.pixel_size = (float(self.pixel_size[0]), float(self.pixel_size[1]))
        if self.path is not None:
            self.path = Path(self.path)
        if self.name is None:
            self.name = _stem(self.path)

    # ------------------------------------------------------------------ shape
    @property
    def shape(self) -> tuple[int, int, int]:
        """Full-resolution shape ``(C, Y, X)``."""
        return tuple(int(s) for s in self.levels[0].shape)  # type: ignore[return-value]

    @property
    def count(self) -> int:
        """Number of channels."""
        return self.shape[0]

    @property
    def dtype(self) -> np.dtype:
        """Pixel data type."""
        return self.levels[0].dtype

    @property
    def data(self) -> Any:
        """The full-resolution level (lazy where the reader made it lazy)."""
        return self.levels[0]

    @property
    def n_levels(self) -> int:
        """Number of pyramid levels."""
        return len(self.levels)

    @property
    def pixel_size_um(self) -> tuple[float, float] | None:
        """Level-0 pixel size ``(y, x)`` in µm; None when unknown or not a length (e.g. degrees)."""
        scale = _TO_UM.get(str(self.units).lower())
        if self.pixel_size is None or scale is None:
            return None
        return (self.pixel_size[0] * scale, self.pixel_size[1] * scale)

    def level_pixel_size(self, level: int) -> tuple[float, float] | None:
        """Pixel size ``(y, x)`` in µm at ``level`` (level 0 size times the downsampling factor)."""
        base = self.pixel_size_um
        if base is None:
            return None
        _, h0, w0 = self.levels[0].shape
        _, h, w = self.levels[level].shape
        return (base[0] * level_factor(h0, h), base[1] * level_factor(w0, w))

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
        return xr.DataArray(arr, dims=("c", "y", "x"), coords=coords, attrs=attrs, name=self.name)

    # ------------------------------------------------------------------ resources
    def close(self) -> None:
        """Close open file handles (reading a level afterwards reopens the file where the format allows)."""
        while self._closers:
            self._closers.pop()()

    def __enter__(self) -> MultiscaleImage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _dask(level: Any) -> Any:
    import dask.array as da

    return da.asarray(level)


def _stem(path: Path | None) -> str:
    if path is None:
        return "image"
    name = path.name
    for suffix in _SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name
