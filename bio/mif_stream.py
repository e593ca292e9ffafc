"""Stream a tiled H&E -> marker prediction into a Zarr array, row band by row band, resumably.

Tiles come from :class:`hyperplex.common.tiling.Tiler` and are blended with its tapered weights
(:func:`hyperplex.common.tiling.taper_weights`), exactly as :class:`~hyperplex.common.tiling.Stitcher`
does, but only one band of rows (a tile high plus the overlap) is held in memory: when a row of tiles
is done, the rows no later tile touches are final and are written to the Zarr array. Memory is
``O(tile x width x markers)`` for any slide height.

Resume: the work folder holds the output array, ``state.json`` (the settings and how many rows are
final) and the raw output of every tile whose rows are not all final yet (``tiles/<index>.npy``). A
run restarted with the same settings skips final rows and reloads stored tiles instead of predicting
them again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from hyperplex.common.atomic import atomic_path
from hyperplex.common.errors import InvalidParameterError
from hyperplex.common.tiling import Tiler, Window, taper_weights

__all__ = ["BandWriter", "check_settings", "load_state", "remove_tree", "save_state", "stream_tiles"]

TileFn = Callable[[np.ndarray], np.ndarray]
Encode = Callable[[np.ndarray], np.ndarray]


def load_state(work: Path) -> dict[str, Any] | None:
    """The work folder's ``state.json``, or None when there is none."""
    path = work / "state.json"
    return json.loads(path.read_text()) if path.is_file() else None


def save_state(work: Path, state: dict[str, Any]) -> None:
    """Write ``state.json`` atomically."""
    with atomic_path(work / "state.json") as tmp:
        tmp.write_text(json.dumps(state, indent=1))


class BandWriter:
    """Blend tile outputs over a band of rows and flush final rows into ``target`` (a Zarr array).

    Args:
        target: ``(C, H, W)`` array the final rows are written to (encoded by ``encode``).
        tiler: The tile layout.
        top: First row that is not final yet.
        encode: Float blend ``(C, h, W)`` -> the stored dtype.
    """

    def __init__(self, target: Any, tiler: Tiler, top: int, encode: Encode):
        self.target, self.tiler, self.top, self.encode = target, tiler, top, encode
        channels, width = target.shape[0], target.shape[2]
        self.sum = np.zeros((channels, 0, width), np.float32)
        self.weight = np.zeros((0, width), np.float32)

    def add(self, window: Window, block: np.ndarray) -> None:
        """Accumulate a tile output ``(C, h, w)`` (its rows above ``top`` are already final: skipped)."""
        cut = max(self.top - window.row, 0)
        if cut >= window.height:
            return
        bottom = window.row + window.height - self.top
        if bottom > self.weight.shape[0]:
            grow = bottom - self.weight.shape[0]
            self.sum = np.concatenate([self.sum, np.zeros((self.sum.shape[0], grow, self.sum.shape[2]), np.float32)], 1)
            self.weight = np.concatenate([self.weight, np.zeros((grow, self.weight.shape[1]), np.float32)])
        w = taper_weights(window, self.tiler).astype(np.float32)[cut:]
        rows = slice(window.row + cut - self.top, bottom)
        cols = slice(window.col, window.col + window.width)
        self.sum[:, rows, cols] += block[:, cut:] * w
        self.weight[rows, cols] += w

    def flush(self, final: int) -> None:
        """Write rows ``[top, final)`` (blended, encoded) and drop them from the band."""
        n = final - self.top
        if n <= 0:
            return
        with np.errstate(invalid="ignore", divide="ignore"):
            blend = self.sum[:, :n] / self.weight[:n]
        self.target[:, self.top : final, :] = self.encode(blend)
        self.sum, self.weight = self.sum[:, n:].copy(), self.weight[n:].copy()
        self.top = final


def _row_groups(tiler: Tiler) -> list[list[tuple[int, Window]]]:
    """Tile indices and windows grouped by tile row, top to bottom (the Tiler's row-major order)."""
    groups: dict[int, list[tuple[int, Window]]] = {}
    for index, window in enumerate(tiler):
        groups.setdefault(window.row, []).append((index, window))
    return [groups[row] for row in sorted(groups)]


def _save_tile(path: Path, block: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, block)


def _outputs(
    todo: list[tuple[int, Window]], tiles: Path, read: Callable[[Window], np.ndarray], fn: TileFn, workers: int
) -> Iterator[tuple[int, Window, np.ndarray, bool]]:
    """``(index, window, output, computed)`` per tile: stored outputs reloaded, the others predicted.

    Tiles to predict are read ahead by ``workers`` threads while the model runs.
    """
    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        reads = {i: pool.submit(read, w) for i, w in todo if not (tiles / f"{i}.npy").is_file()}
        for index, window in todo:
            stored = tiles / f"{index}.npy"
            if index not in reads:
                yield index, window, np.load(stored), False
                continue
            block = fn(reads.pop(index).result())
            _save_tile(stored, block)
            yield index, window, block, True


def stream_tiles(
    target: Any, tiler: Tiler, work: Path, read: Callable[[Window], np.ndarray], fn: TileFn, encode: Encode,
    *, workers: int = 2,
) -> Generator[tuple[int, int], None, int]:  # fmt: skip
    """Predict every tile not done yet and write final rows into ``target``; resumable.

    Args:
        target: ``(C, H, W)`` Zarr array in ``work``.
        tiler: Tile layout over ``(H, W)``.
        work: Work folder with ``state.json`` (``final_rows``) and ``tiles/``.
        read: Window -> input tile.
        fn: Input tile -> float32 output ``(C, h, w)``.
        encode: Float blend -> stored values.
        workers: Threads reading tiles ahead.

    Yields:
        ``(tiles_done, tiles_total)`` after each tile (tiles of final rows count as done).

    Returns:
        Number of tiles predicted in this call (not reloaded, not skipped).
    """
    tiles = work / "tiles"
    tiles.mkdir(parents=True, exist_ok=True)
    state = load_state(work) or {}
    final = int(state.get("final_rows", 0))
    band, groups, done, computed = BandWriter(target, tiler, final, encode), _row_groups(tiler), 0, 0
    for k, group in enumerate(groups):
        bottom = max(w.row + w.height for _, w in group)
        if bottom <= final:
            done += len(group)
            yield done, len(tiler)
            continue
        for _index, window, block, fresh in _outputs(group, tiles, read, fn, workers):
            band.add(window, block)
            done, computed = done + 1, computed + int(fresh)
            yield done, len(tiler)
        new_final = groups[k + 1][0][1].row if k + 1 < len(groups) else tiler.height
        if new_final > final:
            band.flush(new_final)
            final = new_final
            save_state(work, {**state, "final_rows": final})
            _drop_finished(tiles, groups[: k + 1], final)
    return computed


def _drop_finished(tiles: Path, groups: list[list[tuple[int, Window]]], final: int) -> None:
    """Delete stored outputs of tiles whose rows are all final."""
    for group in groups:
        for index, window in group:
            if window.row + window.height <= final:
                (tiles / f"{index}.npy").unlink(missing_ok=True)


def check_settings(work: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """The work folder's state when its settings equal ``settings``; a fresh state when it has none.

    Raises:
        InvalidParameterError: If the folder holds a run with other settings (a resume would mix them).
    """
    state = load_state(work)
    if state is None:
        work.mkdir(parents=True, exist_ok=True)
        state = {"settings": settings, "final_rows": 0, "stage": "tiles"}
        save_state(work, state)
        return state
    if state.get("settings") != settings:
        changed = sorted(k for k in settings if state.get("settings", {}).get(k) != settings[k])
        raise InvalidParameterError(
            f"{work}: holds an interrupted run with other settings ({', '.join(changed)}); run again with the "
            f"same options to resume it, or delete {work} to start over."
        )
    return state


def remove_tree(path: Path) -> None:
    """Delete a work folder (files, then folders)."""
    import shutil

    if os.path.isdir(path):
        shutil.rmtree(path)
