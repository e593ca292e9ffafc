"""A detection command's start: the first scene's two largest buffers written while the pipeline imports.

``hyperplex methane detect`` spends its first ~0.5 s importing the pipeline (numba above all) on one core.
The filter cube the read fills and the resident cube Mag1c's compiled engine fills (each lines x samples x
filter bands float32: 297 MB for a full EMIT scene) are the run's first large allocations; writing their
fresh pages costs ~0.46 s each in a fresh process on the benchmark machine (see
:mod:`hyperplex.common.warm_memory`). :func:`warm_start` reserves both before the pipeline is imported, so
that work happens on the second core; the read and the engine take them with
:func:`hyperplex.common.warm_memory.empty`, and the pipeline releases whatever was not taken once the
filter has run (also when it fails).

Only the first scene of a command is prepared (later scenes reuse the memory the first one freed), only
EMIT radiance granules (their shape and bands are read from the header without reading data), and only
with the window's bands (``cfg.bands`` picks bands by a strategy that would import the filters).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hyperplex.common.errors import HyperplexError
from hyperplex.common.warm_memory import reserve
from hyperplex.geo.detect.config import DetectConfig
from hyperplex.geo.detect.filter_bands import filter_bands
from hyperplex.geo.io.emit import emit_channels, emit_data_shape, is_emit

__all__ = ["scene_buffer_bytes", "warm_start"]

#: Methods whose engine on the CPU reads the cube into a resident copy of the same size (Mag1c's compiled one).
RESIDENT_COPY = ("mag1c",)


def scene_buffer_bytes(path: str | Path, cfg: DetectConfig) -> list[int]:
    """Bytes of the filter cube (and of Mag1c's resident cube) a detection of ``path`` allocates first.

    Returns:
        One or two sizes, or ``[]`` when they are not known from the header alone: not an EMIT radiance
        granule, a band selection (``cfg.bands``), or a file the pipeline will reject (it reports why).
    """
    p = Path(path)
    try:
        if cfg.bands is not None or not p.is_file() or not is_emit(p):
            return []
        name, (lines, samples, bands) = emit_data_shape(p)
        channels = emit_channels(p)
        if name != "radiance" or bands != len(channels):
            return []
        n_filter = filter_bands(channels, cfg, p).size
    except (HyperplexError, OSError, ValueError, KeyError):  # the pipeline reads the file again and reports it
        return []
    cube = lines * samples * n_filter * np.dtype(np.float32).itemsize
    return [cube, cube] if cfg.method in RESIDENT_COPY else [cube]


def warm_start(inputs: Sequence[str | Path], cfg: DetectConfig) -> list[int]:
    """Reserve the first input's buffers (:func:`scene_buffer_bytes`) when it is a file; never raises.

    Returns:
        The reserved sizes (``[]`` for none).
    """
    sizes = scene_buffer_bytes(inputs[0], cfg) if inputs else []
    if sizes:
        reserve(sizes)
    return sizes
