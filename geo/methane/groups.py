"""Statistics groups: detector columns or tiles (no torch: the compiled CPU path uses them too)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from hyperplex.common.errors import InvalidParameterError

__all__ = ["Grouping"]


@dataclass(frozen=True)
class Grouping:
    """How pixels share statistics.

    ``kind='column'``: one group per ``columns`` adjacent detector columns (all lines). ``kind='tile'``:
    one group per ``tile`` x ``tile`` block (``tile=None``: the whole cube is one group).
    """

    kind: str
    height: int
    width: int
    columns: int = 1
    tile: int | None = None

    @classmethod
    def create(cls, group: str, shape: tuple[int, int], columns: int = 1, tile: int | None = None) -> Grouping:
        """Validate and build a grouping for a cube of spatial ``shape``."""
        if group not in ("column", "tile"):
            raise InvalidParameterError(f"`group` must be 'column' or 'tile'; got {group!r}.")
        if int(columns) < 1 or (tile is not None and int(tile) < 1):
            raise InvalidParameterError("`group_columns` and `tile_size` must be positive integers.")
        return cls(group, int(shape[0]), int(shape[1]), int(columns), None if tile is None else int(tile))

    @property
    def tile_shape(self) -> tuple[int, int]:
        """Tile height and width (tile mode)."""
        return (self.tile or self.height, self.tile or self.width)

    @property
    def n_groups(self) -> int:
        """Number of groups."""
        if self.kind == "column":
            return -(-self.width // self.columns)
        th, tw = self.tile_shape
        return -(-self.height // th) * -(-self.width // tw)

    def column_groups(self) -> np.ndarray:
        """Group of each column (column mode), shape (W,)."""
        return np.arange(self.width) // self.columns

    def group_map(self) -> np.ndarray:
        """Group id of every pixel, shape (H, W), int64."""
        if self.kind == "column":
            return np.broadcast_to(self.column_groups(), (self.height, self.width)).astype(np.int64)
        th, tw = self.tile_shape
        rows = np.arange(self.height)[:, None] // th
        cols = np.arange(self.width)[None, :] // tw
        return (rows * -(-self.width // tw) + cols).astype(np.int64)

    def segments(self, r0: int) -> list[tuple[int, int, int]]:
        """Column ranges of one chunk starting at row ``r0`` with their group (tile mode)."""
        th, tw = self.tile_shape
        first = (r0 // th) * -(-self.width // tw)
        return [(c, min(c + tw, self.width), first + c // tw) for c in range(0, self.width, tw)]

    def split(self, chunks: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Cut row ranges at tile-row boundaries so each chunk lies in one row of tiles."""
        if self.kind == "column":
            return chunks
        th = self.tile_shape[0]
        out = []
        for r0, r1 in chunks:
            edges = sorted({r0, r1, *range((r0 // th + 1) * th, r1, th)})
            out.extend(itertools.pairwise(edges))
        return out
