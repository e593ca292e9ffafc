"""One compiled pass over a pixel-major block of lines: the filter cube, the RGB bands and the scene masks.

The read stage of detection takes, from each block of lines, the filter bands (into the pixel-major
filter cube), the quicklook's RGB bands, and the per-pixel masks of :class:`~.masks.SceneMasks` (fill,
saturation, flare and the brightness for dark surfaces). With numpy that is a dozen passes over each
block (copies, reductions along the short band axis); here it is one pass, pixel by pixel, with each
pixel's bands in cache. A contiguous granule is scanned straight from its stored lines (fill still
-9999) by :func:`scan_lines`, in as many threads as there are cores (the kernel releases the GIL), each
reading and scanning its own blocks of lines.

Same values as :meth:`.masks.SceneMasks.update` and the numpy copies of ``scene._read`` (tested),
except the brightness, a mean accumulated in float64 here (numpy: float32 pairwise sums), which agree
to float32 rounding.
"""

from __future__ import annotations

import functools
import queue
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from hyperplex.common.threads import compute_threads
from hyperplex.geo.detect.config import MaskConfig
from hyperplex.geo.detect.masks import SceneMasks
from hyperplex.geo.io.emit_raw import ContiguousRows
from hyperplex.geo.methane.mag1c_filter.jit import kernel, load_cached, numba_or_none
from hyperplex.geo.nodata import FILL_VALUE

__all__ = ["BandPositions", "block_kernel", "compile_block_kernel", "read_block", "scan_lines"]


class BandPositions:
    """Where each product's bands are along a block's last axis (unsigned index arrays; -1: no flare band).

    Args:
        filt: The filter bands.
        rgb: The quicklook's red, green and blue bands (empty: no quicklook).
        saturation: The saturation window's bands (empty: no saturation mask).
        flare: The 2389 nm band, or -1.
    """

    def __init__(self, filt: np.ndarray, rgb: np.ndarray, saturation: np.ndarray, flare: int) -> None:
        # unsigned: the compiled gather then needs no negative-index wrap-around test (half the time)
        self.filt, self.rgb, self.saturation = (np.asarray(a, dtype=np.uint64) for a in (filt, rgb, saturation))
        self.flare = int(flare)

    def through(self, at: np.ndarray) -> BandPositions:
        """These positions mapped through ``at`` (positions of the requested bands in a block)."""
        at = np.asarray(at, dtype=np.int64)
        flare = at[self.flare] if self.flare >= 0 else -1
        return BandPositions(at[self.filt], at[self.rgb], at[self.saturation], flare)


@functools.cache
def block_kernel() -> Any:
    """The compiled pass (numba), its disk-cached machine code loaded; None without numba."""
    if numba_or_none() is None:
        return None

    @kernel(nogil=True)
    def scan(block, r0, filt, rgb, sat, flare_at, sat_max, flare_min,  # pragma: no cover
             cube, rgb_out, fill, saturated, flare, bright):  # fmt: skip
        rows, width, _ = block.shape
        n = filt.size
        missing = np.float32(FILL_VALUE)
        for k in range(rows):
            r = r0 + k
            for w in range(width):
                pixel, out = block[k, w], cube[r, w]
                total = 0.0  # float64: finite exactly when every band is
                nonzero = False
                for j in range(n):
                    v = pixel[filt[j]]
                    v = np.float32(np.nan) if v == missing else v
                    out[j] = v
                    total += v
                    nonzero |= v != 0.0
                empty = not (np.isfinite(total) and nonzero)
                fill[r, w] = empty
                bright[r, w] = np.nan if empty else total / n
                top = np.float32(-np.inf)
                for j in range(sat.size):  # NaN never compares greater (skipped, as by np.fmax); -9999 never wins
                    v = pixel[sat[j]]
                    top = v if v > top else top
                saturated[r, w] = top > sat_max
                flare[r, w] = flare_at >= 0 and pixel[flare_at] > flare_min
                for j in range(rgb.size):
                    v = pixel[rgb[j]]
                    rgb_out[j, r, w] = np.float32(np.nan) if v == missing else v

    load_cached(scan)
    return scan


def compile_block_kernel() -> None:
    """Load or compile the pass for the block types detection uses (run by ``jit.warm_up``); no-op without numba."""
    if block_kernel() is None:
        return
    block = np.zeros((1, 2, 4), np.float32)
    positions = BandPositions(np.arange(2), np.arange(3), np.arange(1, 4), 3)
    cube, rgb, masks = np.empty((1, 2, 2), np.float32), np.empty((3, 1, 2), np.float32), SceneMasks((1, 2))
    read_block(block, 0, positions, cube, rgb, masks, MaskConfig())  # one signature serves every granule


def read_block(block: np.ndarray, r0: int, bands: BandPositions, cube: np.ndarray, rgb: np.ndarray | None,
               masks: SceneMasks, cfg: MaskConfig) -> None:  # fmt: skip
    """Lines ``r0:r0 + len(block)`` of the pixel-major ``cube`` ``(H, W, bands)``, ``rgb`` and ``masks`` from ``block``.

    Args:
        block: float32 ``(lines, samples, k)``, C order; fill as NaN or -9999.
        r0: The block's first line in the scene.
        bands: Positions of the products' bands in ``block``.
        cube: The filter cube, pixel-major ``(H, W, len(bands.filt))``.
        rgb: ``(3, H, W)`` or None (then ``bands.rgb`` must be empty).
        masks: Filled for these lines (then :meth:`~.masks.SceneMasks.finish` as usual).
        cfg: Thresholds.
    """
    layers = masks.layers
    rgb_out = np.empty((0, 1, 1), np.float32) if rgb is None else rgb
    block_kernel()(block, r0, bands.filt, bands.rgb, bands.saturation, bands.flare,
                   np.float32(cfg.saturation_threshold), np.float32(cfg.flare_threshold), cube, rgb_out,
                   layers["fill"], layers["saturated"], layers["flare"], masks.brightness)  # fmt: skip


def scan_lines(raw: ContiguousRows, blocks: list[slice], bands: BandPositions, cube: np.ndarray,
               rgb: np.ndarray | None, masks: SceneMasks, cfg: MaskConfig) -> Iterator[slice]:  # fmt: skip
    """:func:`read_block` over the stored lines of a contiguous float32 granule, in :func:`compute_threads` threads.

    Each thread reads every n-th block of lines into its own buffer and scans it. Yields each block once it
    is done (in completion order), for progress; an error in a thread is raised here.

    Args:
        raw: The granule's line reader.
        blocks: Blocks of lines covering the rows to read.
        bands: Positions of the products' bands among the stored bands.
        cube: As for :func:`read_block`.
        rgb: As for :func:`read_block`.
        masks: As for :func:`read_block`.
        cfg: As for :func:`read_block`.
    """
    threads = max(1, min(compute_threads(), len(blocks)))
    done: queue.Queue = queue.Queue()

    def work(mine: list[slice]) -> None:
        try:
            buffer = np.empty(max(b.stop - b.start for b in mine) * raw.line_bytes, np.uint8)
            for rows in mine:
                read_block(raw.read_lines(rows.start, rows.stop, buffer), rows.start, bands, cube, rgb, masks, cfg)
                done.put(rows)
        except BaseException as err:  # handed to the caller's thread
            done.put(err)

    with ThreadPoolExecutor(threads, thread_name_prefix="hyperplex-scan") as pool:
        for i in range(threads):
            pool.submit(work, blocks[i::threads])
        for _ in blocks:
            item = done.get()
            if isinstance(item, BaseException):
                raise item
            yield item
