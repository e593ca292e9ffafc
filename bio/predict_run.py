"""One whole-slide MIPHEI run: its work folder, the streamed tiles, the OME-Zarr and the cell table.

Used by :func:`hyperplex.bio.predict_mif.predict_mif_steps`; the stages are resumable: tiles through
the work folder's state (:mod:`hyperplex.bio.mif_stream`), the OME-Zarr and table are rewritten
atomically from the finished work array.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np

from hyperplex.bio.mif_pairs import intensity
from hyperplex.bio.mif_stream import check_settings, remove_tree, save_state, stream_tiles
from hyperplex.common.arrays import materialize
from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import InvalidParameterError
from hyperplex.common.tiling import Tiler, Window

__all__ = ["MifRun", "model_digest"]


def model_digest(model: Any) -> str:
    """A short hash of a model's weights (a resumed run must use the same model)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().float().numpy().tobytes()[:4096])
    return h.hexdigest()[:16]


def _encode(blend: np.ndarray) -> np.ndarray:
    """Blended tanh outputs -> uint8 intensity (0-255 = 0-1)."""
    return np.rint(intensity(np.nan_to_num(blend, nan=-1.0)) * 255).astype(np.uint8)


def _decode(stored: np.ndarray) -> np.ndarray:
    return stored.astype(np.float32) / 255.0


class MifRun:
    """Settings and work folder of one prediction (see the module docstring).

    Args:
        model: The MIPHEI model.
        rgb: ``(3, H, W)`` slide.
        out: Output OME-Zarr path.
        source: Slide label for the metadata.
        pixel_size: ``(y, x)`` µm or None.
        tile: Tile side (None: the model's ``img_size``).
        overlap: Tile overlap (None: a quarter of the tile).
        device: Torch device name or None (GPU when available).

    Raises:
        InvalidParameterError: For a tile that is not a multiple of 16 or an overlap not below the tile.
    """

    def __init__(self, model: Any, rgb: Any, out: Path, source: str, pixel_size: Any, tile: Any, overlap: Any,
                 device: str | None):  # fmt: skip
        import torch

        self.model, self.rgb, self.out, self.source, self.pixel_size = model, rgb, out, source, pixel_size
        self.tile = int(tile or model.config.get("img_size", 256))
        overlap = self.tile // 4 if overlap is None else overlap
        if self.tile <= 0 or self.tile % 16 or not 0 <= overlap < self.tile:
            raise InvalidParameterError(
                f"`--tile` must be a positive multiple of 16 and `--overlap` in [0, tile); got {self.tile}, {overlap}."
            )
        self.overlap = int(overlap)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.height, self.width = int(rgb.shape[1]), int(rgb.shape[2])
        self.work = out.with_name(out.name + ".work")
        settings = {"source": source, "shape": [self.height, self.width], "tile": self.tile, "overlap": self.overlap,
                    "model": model_digest(model), "markers": list(model.output_channels.names)}  # fmt: skip
        self.state = check_settings(self.work, settings)

    def _array(self) -> Any:
        import zarr

        shape = (len(self.model.output_channels), self.height, self.width)
        path = self.work / "markers.zarr"
        if path.exists():
            return zarr.open_array(path, mode="r+")
        return zarr.create_array(path, shape=shape, chunks=(1, 256, 256), dtype=np.uint8, fill_value=0)

    def _predict(self, tile: np.ndarray) -> np.ndarray:
        from hyperplex.common.models import predict_markers

        size = -(-max(tile.shape[1:]) // 16) * 16
        out, _ = predict_markers(self.model, tile, size, 0, device=self.device, progress=lambda done, total: None)
        return out

    def _read(self, window: Window) -> np.ndarray:
        rows, cols = window.slices
        return np.asarray(materialize(self.rgb[:, rows, cols]))

    @property
    def tiler(self) -> Tiler:
        """The tile layout over the slide."""
        return Tiler((self.height, self.width), self.tile, self.overlap)

    @property
    def tile_count(self) -> int:
        """Number of tiles."""
        return len(self.tiler)

    def tiles(self, workers: int) -> Generator[tuple[int, int], None, int]:
        """Predict and stream every tile not done yet; returns the number predicted now."""
        tiler = self.tiler
        if self.state.get("stage") != "tiles":
            yield len(tiler), len(tiler)
            return 0
        self.model.to(self.device)
        predicted = yield from stream_tiles(self._array(), tiler, self.work, self._read, self._predict, _encode,
                                            workers=workers)  # fmt: skip
        self.state = {**self.state, "stage": "zarr", "final_rows": self.height}
        save_state(self.work, self.state)
        return predicted

    def markers(self) -> Any:
        """The finished ``(M, H, W)`` uint8 marker array of the work folder."""
        import zarr

        return zarr.open_array(self.work / "markers.zarr", mode="r")

    def write_zarr(self, channels: ChannelSet) -> Path:
        """Write the OME-Zarr (pyramid, names, colours, pixel size) atomically from the work array."""
        import dask.array as da

        from hyperplex.bio.write_zarr import write_ome_zarr

        if self.state.get("stage") == "zarr" or not self.out.exists():
            meta_name = self.out.name.split(".")[0]
            write_ome_zarr(self.out, da.from_zarr(self.markers()), channels, self.pixel_size, name=meta_name)
            self.state = {**self.state, "stage": "cells"}
            save_state(self.work, self.state)
        return self.out

    def cells(self, labels: Any) -> Generator[tuple[int, int], None, tuple]:
        """Measure the cells, write the table and its JSON, remove the work folder.

        Returns:
            ``(csv, json, markers, count)`` plus the thresholds, as :class:`PredictMifResult` fields.
        """
        from hyperplex.bio.cell_table import measure_slide, write_cell_table

        names = tuple(self.model.output_channels.names)
        blocks = yield from measure_slide(
            self.rgb, self.markers(), labels, _decode, self.pixel_size, spill_dir=self.work
        )  # on the output's disk, removed with the work folder
        stem = self.out.name.split(".")[0]
        csv_path, json_path = self.out.with_name(f"{stem}.cells.csv"), self.out.with_name(f"{stem}.cells.json")
        extra = {"model": self.state["settings"]["model"], "source": self.source, "tile": self.tile,
                 "overlap": self.overlap, "zarr": self.out.name}  # fmt: skip
        count, thresholds = write_cell_table(blocks, names, csv_path, json_path, extra)
        remove_tree(self.work)
        return csv_path, json_path, ChannelSet.from_names(names), count, json.loads(json.dumps(thresholds))
