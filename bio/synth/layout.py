"""Tissue layout: regions, cell placement, and the exact cell / nucleus / membrane label masks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from hyperplex.bio.synth.fields import smooth_field
from hyperplex.bio.synth.panel import CELL_TYPES

__all__ = ["Layout", "make_layout"]

TYPE_NAMES = tuple(CELL_TYPES)
#: Cell-type mix per region (tumour nest, stroma, lymphoid follicle).
_MIX = {
    "tumor": {"tumor": 0.84, "cd8_t": 0.06, "cd4_t": 0.04, "macrophage": 0.06},
    "stroma": {
        "fibroblast": 0.34,
        "cd8_t": 0.14,
        "cd4_t": 0.15,
        "macrophage": 0.12,
        "b_cell": 0.08,
        "endothelial": 0.17,
    },
    "follicle": {"b_cell": 0.72, "cd4_t": 0.14, "cd8_t": 0.05, "macrophage": 0.09},
}


@dataclass
class Layout:
    """Geometry of a synthetic tissue; labels are 1..K, 0 is extracellular space.

    Attributes:
        cells: ``(H, W)`` int32 whole-cell labels.
        nuclei: ``(H, W)`` int32 nucleus labels (same id as the cell).
        membrane: ``(H, W)`` bool, the 2-px inner rim of every cell.
        types: ``(K,)`` cell-type name per cell id ``k`` at index ``k - 1``.
        tissue: ``(H, W)`` bool, tissue (True) vs. empty slide.
        fibres: ``(H, W)`` float32 extracellular-matrix fibre texture in [0, 1].
    """

    cells: np.ndarray
    nuclei: np.ndarray
    membrane: np.ndarray
    types: np.ndarray
    tissue: np.ndarray
    fibres: np.ndarray

    @property
    def count(self) -> int:
        """Number of cells K."""
        return len(self.types)


def _regions(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Region map (0 empty, 1 stroma, 2 tumour, 3 follicle), fibre angle field, and fibre texture."""
    shape = (size, size)
    tissue = smooth_field(rng, shape, size / 6) > -1.3
    region = np.where(tissue, 1, 0).astype(np.uint8)
    region[tissue & (smooth_field(rng, shape, size / 10) > 0.25)] = 2
    if size >= 192:
        cy, cx = rng.uniform(0.25, 0.75, 2) * size
        yy, xx = np.ogrid[:size, :size]
        region[((yy - cy) ** 2 + (xx - cx) ** 2 < (size / 9) ** 2) & tissue] = 3
    angle = (smooth_field(rng, shape, size / 8) * np.pi / 2).astype(np.float32)
    return region, angle, _fibres(rng, angle)


def _fibres(rng: np.random.Generator, angle: np.ndarray, reach: int = 8) -> np.ndarray:
    """Collagen-like streaks: noise averaged along the local fibre direction (line-integral convolution)."""
    noise = ndimage.gaussian_filter(rng.standard_normal(angle.shape).astype(np.float32), 0.7)
    yy, xx = np.indices(angle.shape, dtype=np.float32)
    dy, dx = np.sin(angle), np.cos(angle)
    acc = np.zeros_like(noise)
    for t in range(-reach, reach + 1):
        acc += ndimage.map_coordinates(noise, (yy + t * dy, xx + t * dx), order=1, mode="wrap")
    acc /= acc.std() or 1.0
    return np.clip(0.5 + 0.3 * acc, 0, 1).astype(np.float32)


def _place(rng: np.random.Generator, region: np.ndarray, angle: np.ndarray, cells: int | None) -> list[tuple]:
    """Dart throwing with per-type radii; returns (y, x, type, a, b, theta) per accepted cell."""
    size = region.shape[0]
    target = cells if cells is not None else 10**9
    n_cand = max(4 * size * size // 110, 10 * (cells or 0))
    ys, xs = rng.uniform(0, size, n_cand), rng.uniform(0, size, n_cand)
    grid: dict[tuple[int, int], list[int]] = {}
    placed: list[tuple] = []
    step = 24
    for y, x, u in zip(ys, xs, rng.random(n_cand)):
        reg = int(region[int(y), int(x)])
        if reg == 0:
            continue
        kind = _pick_type(reg, u)
        p = CELL_TYPES[kind]
        r = p["radius"] * rng.uniform(0.85, 1.15)
        if _overlaps(grid, placed, y, x, r, step):
            continue
        theta = float(angle[int(y), int(x)]) if p["elong"] > 2 else rng.uniform(0, np.pi)
        a, b = r * np.sqrt(p["elong"]), r / np.sqrt(p["elong"])
        grid.setdefault((int(y) // step, int(x) // step), []).append(len(placed))
        placed.append((y, x, kind, a, b, theta, r))
        if len(placed) >= target:
            break
    return placed


def _pick_type(region: int, u: float) -> str:
    mix = _MIX[("stroma", "tumor", "follicle")[region - 1]]
    acc = 0.0
    for kind, share in mix.items():
        acc += share
        if u < acc:
            return kind
    return next(iter(mix))


def _overlaps(grid: dict, placed: list, y: float, x: float, r: float, step: int) -> bool:
    gy, gx = int(y) // step, int(x) // step
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            for j in grid.get((gy + dy, gx + dx), ()):
                py, px, *_, pr = placed[j]
                if (py - y) ** 2 + (px - x) ** 2 < (0.8 * (pr + r)) ** 2:
                    return True
    return False


def _rasterise(placed: list, size: int, rough: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Weighted-Voronoi cell labels (normalised elliptical distance < 1) and nuclei inside them."""
    cells = np.zeros((size, size), np.int32)
    best = np.full((size, size), np.inf, np.float32)
    nuc_dist = np.full((size, size), np.inf, np.float32)
    for k, (y, x, kind, a, b, theta, _r) in enumerate(placed, start=1):
        ratio = CELL_TYPES[kind]["nucleus"] * (rng.uniform(0.85, 1.2) if kind == "tumor" else rng.uniform(0.93, 1.07))
        off = rng.uniform(-0.15, 0.15, 2) * b
        box, d = _ellipse_distance(y, x, a, b, theta, size)
        d = d * (1 + 0.12 * rough[box])
        dn = _ellipse_distance(y + off[0], x + off[1], a * ratio, b * ratio, theta, size, box)[1]
        win = (d < 1) & (d < best[box])
        best[box][win] = d[win]
        cells[box][win] = k
        nuc_dist[box][win] = dn[win]
    nuclei = np.where(nuc_dist < 1, cells, 0).astype(np.int32)
    return cells, nuclei


def _ellipse_distance(
    y: float, x: float, a: float, b: float, theta: float, size: int, box: tuple[slice, slice] | None = None
) -> tuple[tuple[slice, slice], np.ndarray]:
    if box is None:
        reach = int(np.ceil(max(a, b) * 1.25)) + 1
        box = (slice(max(int(y) - reach, 0), min(int(y) + reach + 1, size)),
               slice(max(int(x) - reach, 0), min(int(x) + reach + 1, size)))  # fmt: skip
    yy, xx = np.ogrid[box[0], box[1]]
    dy, dx = yy + 0.5 - y, xx + 0.5 - x
    u = dx * np.cos(theta) + dy * np.sin(theta)
    v = -dx * np.sin(theta) + dy * np.cos(theta)
    return box, np.sqrt((u / a) ** 2 + (v / b) ** 2).astype(np.float32)


def _relabel(cells: np.ndarray, nuclei: np.ndarray, kinds: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop cells that lost (almost) all pixels to neighbours; renumber 1..K in placement order."""
    area = np.bincount(cells.ravel(), minlength=len(kinds) + 1)
    keep = np.flatnonzero(area[1:] >= 12) + 1
    lut = np.zeros(len(kinds) + 1, np.int32)
    lut[keep] = np.arange(1, len(keep) + 1)
    return lut[cells], lut[nuclei], np.array([kinds[k - 1] for k in keep])


def membrane_mask(cells: np.ndarray, width: int = 2) -> np.ndarray:
    """Pixels of a cell within ``width`` pixels of a different label (its inner rim)."""
    size = 2 * width + 1
    edge = ndimage.maximum_filter(cells, size) != ndimage.minimum_filter(cells, size)
    return edge & (cells > 0)


def make_layout(rng: np.random.Generator, size: int, cells: int | None) -> Layout:
    """Lay out a ``size`` x ``size`` tissue with at most ``cells`` cells (None: as many as fit).

    Args:
        rng: Random generator (the only source of randomness).
        size: Image edge in pixels.
        cells: Maximum number of cells, or None to fill the tissue.

    Returns:
        The layout.
    """
    region, angle, fibres = _regions(rng, size)
    placed = _place(rng, region, angle, cells)
    rough = smooth_field(rng, (size, size), 3.0)
    lab, nuc = _rasterise(placed, size, rough, rng)
    lab, nuc, types = _relabel(lab, nuc, [p[2] for p in placed])
    return Layout(lab, nuc, membrane_mask(lab), types, region > 0, fibres)
