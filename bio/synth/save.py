"""Write a synthetic tissue to disk: images (OME-TIFF, OME-Zarr 0.5), label masks and the truth tables."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from hyperplex.bio.synth.tissue import SyntheticTissue
from hyperplex.bio.write_tiff import write_ome_tiff
from hyperplex.bio.write_zarr import write_ome_zarr
from hyperplex.common.atomic import atomic_path

__all__ = ["write_dataset"]


def write_dataset(tissue: SyntheticTissue, out: str | os.PathLike[str], *, tile: int = 256) -> dict[str, Path]:
    """Write every product of a synthetic tissue under ``out``.

    Files: ``multiplex.ome.tif`` and ``multiplex.ome.zarr`` (with ``labels/cells`` and ``labels/nuclei``),
    ``he.ome.tif`` (interleaved RGB) and ``he.ome.zarr``, ``labels/cells.tif`` and ``labels/nuclei.tif``
    (uint32), ``cells.csv`` (per-cell truth) and ``truth.json`` (panel, compartments, background, parameters).

    Args:
        tissue: The tissue from :func:`tissue`.
        out: Output directory (created).
        tile: Tile and chunk edge in pixels.

    Returns:
        Name -> path of each product.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    size, labels = tissue.pixel_size_um, {"cells": tissue.cells, "nuclei": tissue.nuclei}
    paths = {
        "multiplex_tiff": write_ome_tiff(out / "multiplex.ome.tif", tissue.image, tissue.channels, size, tile=tile),
        "multiplex_zarr": write_ome_zarr(
            out / "multiplex.ome.zarr", tissue.image, tissue.channels, size, chunks=tile, labels=labels
        ),
    }
    if tissue.he.size:
        paths["he_tiff"] = write_ome_tiff(out / "he.ome.tif", tissue.he, None, size, tile=tile, rgb=True)
        rgb = tissue.he_image().channels
        paths["he_zarr"] = write_ome_zarr(out / "he.ome.zarr", tissue.he, rgb, size, chunks=tile)
    for name, mask in labels.items():
        paths[f"{name}_labels"] = write_ome_tiff(
            out / "labels" / f"{name}.ome.tif", mask.astype(np.uint32)[None], [name], size, tile=tile,
            levels=1, compression="zlib",
        )  # fmt: skip
    paths["table"] = _write_text(out / "cells.csv", tissue.table().to_csv(index=False, float_format="%.4f"))
    paths["truth"] = _write_text(out / "truth.json", json.dumps(_truth(tissue), indent=1))
    return paths


def _truth(tissue: SyntheticTissue) -> dict:
    types, counts = np.unique(tissue.cell_types, return_counts=True)
    return {
        "description": "Synthetic multiplex tissue; expression = mean noise-free signal over each cell mask, "
        "in counts above the per-channel background (cells.csv).",
        "params": tissue.params,
        "pixel_size_um": tissue.pixel_size_um,
        "shape": list(tissue.image.shape),
        "channels": tissue.channels.to_dict(),
        "compartments": list(tissue.compartments),
        "background": tissue.background.tolist(),
        "cell_count": tissue.count,
        "cell_types": dict(zip(types.tolist(), counts.tolist())),
    }


def _write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path
