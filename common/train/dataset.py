"""A torch Dataset reading a tile store lazily, one Zarr chunk per sample."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import FileFormatError, InvalidParameterError
from hyperplex.common.train.store import TileStore

__all__ = ["TileDataset"]

_FIELDS = ("image", "label", "mask", "target")


class TileDataset(torch.utils.data.Dataset):
    """Samples of a tile store as tensors: ``{"image": (C, H, W) float32, "label": (), "mask": (H, W), ...}``.

    Arrays are opened on first access in each process (DataLoader workers reopen them), and every
    ``__getitem__`` reads only that tile's chunk.

    Args:
        store: A :class:`TileStore` or the path of one.
        fields: Arrays to read besides ``image`` (``label``, ``mask``, ``target``).
        normalize: Standardise the image per channel with the store's ``image_mean`` / ``image_std``.
        indices: The tiles this dataset exposes (a split), default all.

    Raises:
        FileFormatError: If the store lacks a requested field.
    """

    def __init__(
        self,
        store: TileStore | str | os.PathLike[str],
        fields: Sequence[str] = (),
        normalize: bool = True,
        indices: Sequence[int] | None = None,
    ):
        self.store = store if isinstance(store, TileStore) else TileStore.open(store)
        unknown = [f for f in fields if f not in _FIELDS[1:]]
        if unknown:
            raise InvalidParameterError(f"Unknown tile-store fields {unknown}; use some of {list(_FIELDS[1:])}.")
        for name in fields:
            if name != "target":
                self.store.classes(name)  # raises when the store lacks the array or its class names
            elif self.store.target_channels is None or not self.store.has("target"):
                raise FileFormatError(f"{self.store.path}: no `target` array with `target_channels`.")
        self.fields = ("image", *fields)
        self.indices = np.arange(self.store.count) if indices is None else np.asarray(indices, dtype=np.int64)
        mean, std = self.store.attrs["image_mean"], self.store.attrs["image_std"]
        self.mean = torch.tensor(mean, dtype=torch.float32)[:, None, None] if normalize else None
        self.std = torch.tensor(std, dtype=torch.float32)[:, None, None] if normalize else None
        self._arrays: dict[str, Any] | None = None

    @property
    def channels(self) -> ChannelSet:
        """The image channels (:class:`~hyperplex.common.channels.ChannelSet`)."""
        return self.store.channels

    def __len__(self) -> int:
        return len(self.indices)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_arrays": None}  # open handles stay in the process that made them

    def _open(self) -> dict[str, Any]:
        if self._arrays is None:
            self._arrays = {name: self.store.array(name) for name in self.fields}
        return self._arrays

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        arrays = self._open()
        j = int(self.indices[i])
        image = torch.from_numpy(np.asarray(arrays["image"][j], dtype=np.float32))
        if self.mean is not None:
            image = (image - self.mean) / self.std
        sample = {"image": image}
        if "label" in arrays:
            sample["label"] = torch.tensor(int(arrays["label"][j]), dtype=torch.int64)
        if "mask" in arrays:
            sample["mask"] = torch.from_numpy(np.asarray(arrays["mask"][j], dtype=np.int64))
        if "target" in arrays:
            sample["target"] = torch.from_numpy(np.asarray(arrays["target"][j], dtype=np.float32))
        return sample
