"""The training-tile store: a Zarr group of equally sized tiles with optional labels, masks and targets.

Layout (Zarr v3 group, ``*.zarr`` directory)::

    image   (N, C, H, W)  any numeric dtype     the input tiles
    label   (N,)          int64                 image-level class index         (optional)
    mask    (N, H, W)     integer               per-pixel class index           (optional)
    target  (N, K, H, W)  float32               per-pixel regression target     (optional)

    attrs:
      hyperplex_tiles   format version (1)
      channels          ChannelSet.to_dict() of the image channels (names; wavelengths in nm if spectral)
      image_mean/std    per-channel mean and standard deviation over all tiles (float64 statistics)
      label_classes     class names of ``label``     (with ``label``)
      mask_classes      class names of ``mask``      (with ``mask``)
      mask_ignore       mask value left out of the loss, e.g. 255 (optional)
      target_channels   ChannelSet.to_dict() of the target channels (with ``target``)
      meta              free-form JSON (provenance: generator, seed, source scene)

Arrays are chunked along N only (``tiles_per_chunk`` tiles per chunk, 1 by default), so reading one
sample reads one chunk: the store is read lazily by :class:`~hyperplex.common.train.dataset.TileDataset`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hyperplex.common.atomic import atomic_path
from hyperplex.common.channels import ChannelLike, ChannelSet
from hyperplex.common.errors import DataNotFoundError, FileFormatError, InvalidParameterError

__all__ = ["FORMAT_VERSION", "TileStore", "write_tiles"]

#: Value of the ``hyperplex_tiles`` attribute written by :func:`write_tiles`.
FORMAT_VERSION = 1
_BLOCK = 64  # tiles read from the source and written per step


def _check_array(name: str, arr: Any, n: int, shape: tuple[int, ...]) -> None:
    if arr is not None and (tuple(arr.shape[1:]) != shape or arr.shape[0] != n):
        raise InvalidParameterError(f"`{name}` must have shape {(n, *shape)} to match `image`; got {tuple(arr.shape)}.")


def _check_classes(name: str, values: Any, classes: list[str] | None, ignore: int | None) -> None:
    if classes is None:
        raise InvalidParameterError(f"`{name}` needs `{name}_classes` (one name per class index).")
    vals = np.unique(np.asarray(values))
    vals = vals[vals != ignore] if ignore is not None else vals
    if vals.size and (vals.min() < 0 or vals.max() >= len(classes)):
        raise InvalidParameterError(
            f"`{name}` holds class indices {int(vals.min())}..{int(vals.max())} but {len(classes)} "
            f"`{name}_classes` are given; indices must be in 0..{len(classes) - 1}."
        )


def _channel_stats(image: Any) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of (N, C, H, W), accumulated in float64 block by block."""
    c = image.shape[1]
    total, total_sq, count = np.zeros(c), np.zeros(c), 0
    for start in range(0, image.shape[0], _BLOCK):
        block = np.asarray(image[start : start + _BLOCK], dtype=np.float64)
        total += block.sum(axis=(0, 2, 3))
        total_sq += (block**2).sum(axis=(0, 2, 3))
        count += block.shape[0] * block.shape[2] * block.shape[3]
    mean = total / max(count, 1)
    std = np.sqrt(np.maximum(total_sq / max(count, 1) - mean**2, 0.0))
    return mean.tolist(), np.where(std > 0, std, 1.0).tolist()


def _write_array(group: Any, name: str, arr: Any, dtype: Any, per_chunk: int) -> None:
    chunks = (per_chunk, *arr.shape[1:])
    target = group.create_array(name, shape=tuple(arr.shape), chunks=chunks, dtype=dtype)
    for start in range(0, arr.shape[0], _BLOCK):
        target[start : start + _BLOCK] = np.asarray(arr[start : start + _BLOCK], dtype=dtype)


def write_tiles(
    path: str | os.PathLike[str],
    image: Any,
    channels: ChannelLike,
    *,
    label: Any = None,
    mask: Any = None,
    target: Any = None,
    label_classes: list[str] | None = None,
    mask_classes: list[str] | None = None,
    mask_ignore: int | None = None,
    target_channels: ChannelLike | None = None,
    tiles_per_chunk: int = 1,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write a training-tile store (see the module docstring for the layout), atomically.

    Args:
        path: Destination directory (``*.zarr``); replaced if it exists.
        image: Tiles (N, C, H, W): a numpy, Zarr or dask array (read in blocks of 64 tiles).
        channels: The image channels (ChannelSet, wavelengths in nm, or names).
        label: Optional (N,) class index per tile.
        mask: Optional (N, H, W) class index per pixel.
        target: Optional (N, K, H, W) regression target (stored as float32).
        label_classes: Names of the label classes (required with ``label``).
        mask_classes: Names of the mask classes (required with ``mask``).
        mask_ignore: Mask value excluded from losses and metrics (e.g. 255), if any.
        target_channels: Channels of ``target`` (required with ``target``).
        tiles_per_chunk: Tiles per Zarr chunk (1: one read per sample).
        meta: Free-form JSON-serialisable provenance.

    Returns:
        The store path.

    Raises:
        InvalidParameterError: On inconsistent shapes, class indices out of range or missing class names.
        ChannelMismatchError: If ``channels`` or ``target_channels`` do not match the channel counts.
    """
    import zarr

    if len(image.shape) != 4 or min(image.shape) < 1:
        raise InvalidParameterError(f"`image` must be a non-empty (N, C, H, W) array; got shape {tuple(image.shape)}.")
    n, c, h, w = image.shape
    cs = ChannelSet.coerce(channels, count=c)
    _check_array("label", label, n, ())
    _check_array("mask", mask, n, (h, w))
    attrs: dict[str, Any] = {"hyperplex_tiles": FORMAT_VERSION, "channels": cs.to_dict(), "meta": meta or {}}
    attrs["image_mean"], attrs["image_std"] = _channel_stats(image)
    if label is not None:
        _check_classes("label", label, label_classes, None)
        attrs["label_classes"] = list(label_classes)  # type: ignore[arg-type]
    if mask is not None:
        _check_classes("mask", mask, mask_classes, mask_ignore)
        attrs["mask_classes"], attrs["mask_ignore"] = list(mask_classes), mask_ignore  # type: ignore[arg-type]
    if target is not None:
        _check_array("target", target, n, (target.shape[1], h, w))
        if target_channels is None:
            raise InvalidParameterError("`target` needs `target_channels` (one name or wavelength per target channel).")
        attrs["target_channels"] = ChannelSet.coerce(target_channels, count=target.shape[1], name="target").to_dict()
    with atomic_path(path) as tmp:
        group = zarr.open_group(tmp, mode="w", zarr_format=3)
        _write_array(group, "image", image, np.asarray(image[:1]).dtype, tiles_per_chunk)
        for name, arr, dtype in (("label", label, np.int64), ("mask", mask, None), ("target", target, np.float32)):
            if arr is not None:
                _write_array(group, name, arr, dtype or np.asarray(arr[:1]).dtype, tiles_per_chunk)
        group.attrs.update(attrs)
    return Path(path)


@dataclass(frozen=True)
class TileStore:
    """A tile store opened read-only: its metadata, and its arrays on demand.

    Attributes:
        path: The store directory.
        count: Number of tiles N.
        tile_shape: (C, H, W).
        channels: Image channels.
        attrs: All group attributes.
    """

    path: Path
    count: int
    tile_shape: tuple[int, int, int]
    channels: ChannelSet
    attrs: dict[str, Any]

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> TileStore:
        """Open and validate a store written by :func:`write_tiles`.

        Raises:
            DataNotFoundError: If the path does not exist.
            FileFormatError: If it is not a tile store (or a newer format version).
        """
        import zarr

        path = Path(path)
        if not path.exists():
            raise DataNotFoundError(
                f"Tile store {path} does not exist; write one with hyperplex.common.train.write_tiles."
            )
        try:
            group = zarr.open_group(path, mode="r")
            attrs, shape = dict(group.attrs), tuple(group["image"].shape)
        except Exception as err:  # zarr raises several error types for a non-store
            raise FileFormatError(f"{path}: not a readable Zarr tile store ({err}).") from err
        version = attrs.get("hyperplex_tiles")
        if version is None or int(version) > FORMAT_VERSION or len(shape) != 4:
            raise FileFormatError(
                f"{path}: not a hyperplex tile store of format <= {FORMAT_VERSION} (attribute hyperplex_tiles="
                f"{version!r}, image shape {shape}); write it with hyperplex.common.train.write_tiles."
            )
        return cls(path, shape[0], shape[1:], ChannelSet.from_dict(attrs["channels"]), attrs)

    def has(self, name: str) -> bool:
        """True if the store holds array ``name`` (``label``, ``mask`` or ``target``)."""
        return (self.path / name).exists()

    def array(self, name: str) -> Any:
        """The Zarr array ``name`` opened read-only (lazy: nothing is read yet)."""
        import zarr

        return zarr.open_group(self.path, mode="r")[name]

    def classes(self, name: str) -> list[str]:
        """Class names of ``label`` or ``mask``.

        Raises:
            FileFormatError: If the store has no such array.
        """
        if not self.has(name) or f"{name}_classes" not in self.attrs:
            raise FileFormatError(
                f"{self.path}: no `{name}` array with `{name}_classes`; it cannot be used for this task."
            )
        return list(self.attrs[f"{name}_classes"])

    @property
    def target_channels(self) -> ChannelSet | None:
        """Channels of ``target``, or None when the store has no target."""
        data = self.attrs.get("target_channels")
        return None if data is None else ChannelSet.from_dict(data)
