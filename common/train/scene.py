"""Cut a large image with per-pixel truth into training tiles (the input of :func:`write_tiles`).

Example with the synthetic tissue (``hyperplex.bio.synth``): per-pixel cell types come from the cell
labels and each cell's type; the tile label is the dominant cell type of the tile::

    t = tissue(size=256, markers=8, seed=0, he=False)
    classes = ["background", *CELL_TYPES]
    class_map = object_class_map(t.cells, t.cell_types, classes)
    tiles = scene_tiles(t.image, 32, class_map=class_map)
    write_tiles("tiles.zarr", tiles["image"], t.channels, label=tiles["label"], mask=tiles["mask"],
                label_classes=classes, mask_classes=classes)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hyperplex.common.errors import InvalidParameterError

__all__ = ["object_class_map", "scene_tiles"]


def object_class_map(labels: np.ndarray, object_classes: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """Per-pixel class index from an object label image and each object's class name.

    Args:
        labels: (H, W) object ids 1..K, 0 = no object.
        object_classes: Class name of object ``k`` at position ``k - 1``.
        classes: Class names; index 0 is used for pixels outside objects.

    Returns:
        (H, W) uint8 (int32 beyond 255 classes) class indices.

    Raises:
        InvalidParameterError: If an object's class is not in ``classes``.
    """
    lookup = {name: i for i, name in enumerate(classes)}
    missing = sorted({str(c) for c in object_classes} - set(lookup))
    if missing:
        raise InvalidParameterError(f"Object classes {missing} are not in `classes` {list(classes)}.")
    table = np.array([0] + [lookup[str(c)] for c in object_classes], dtype=np.int32)
    if labels.max(initial=0) >= len(table):
        raise InvalidParameterError(f"`labels` holds ids up to {labels.max()} but only {len(object_classes)} classes.")
    out = table[labels]
    return out.astype(np.uint8) if len(classes) <= 256 else out


def _dominant(class_tile: np.ndarray, num_classes: int) -> int:
    """Most frequent class other than 0 in a tile (0 when the tile has only class 0)."""
    counts = np.bincount(class_tile.ravel(), minlength=num_classes)
    counts[0] = 0
    return int(np.argmax(counts)) if counts.any() else 0


def scene_tiles(
    image: np.ndarray,
    tile: int,
    *,
    stride: int | None = None,
    class_map: np.ndarray | None = None,
    target: np.ndarray | None = None,
) -> dict[str, Any]:
    """Cut a (C, H, W) scene into (N, C, tile, tile) tiles on a regular grid, with matching truth.

    Args:
        image: The scene.
        tile: Tile side in pixels.
        stride: Step between tiles (default ``tile``: no overlap); the ragged border is dropped.
        class_map: Optional (H, W) class indices; gives ``mask`` tiles and a ``label`` per tile
            (the most frequent class other than 0).
        target: Optional (K, H, W) per-pixel target; gives ``target`` tiles.

    Returns:
        ``{"image", "origin" (N, 2) (row, col) of each tile}`` plus ``mask`` and ``label`` and/or ``target``.

    Raises:
        InvalidParameterError: If the scene is smaller than a tile or the truth is not on its grid.
    """
    h, w = image.shape[-2:]
    stride = stride or tile
    if tile < 1 or stride < 1 or tile > min(h, w):
        raise InvalidParameterError(f"`tile` ({tile}) and `stride` ({stride}) must be >= 1 and tile <= {min(h, w)}.")
    for name, arr in (("class_map", class_map), ("target", target)):
        if arr is not None and arr.shape[-2:] != (h, w):
            raise InvalidParameterError(f"`{name}` must be on the image grid {(h, w)}; got {arr.shape}.")
    origin = np.array([(r, q) for r in range(0, h - tile + 1, stride) for q in range(0, w - tile + 1, stride)])
    cut = [(slice(r, r + tile), slice(q, q + tile)) for r, q in origin]
    out: dict[str, Any] = {"image": np.stack([image[:, a, b] for a, b in cut]), "origin": origin}
    if class_map is not None:
        out["mask"] = np.stack([class_map[a, b] for a, b in cut])
        k = int(class_map.max(initial=0)) + 1
        out["label"] = np.array([_dominant(m, k) for m in out["mask"]], dtype=np.int64)
    if target is not None:
        out["target"] = np.stack([target[:, a, b] for a, b in cut])
    return out
