"""Known per-cell marker expression, drawn from the cell-type profiles of the panel."""

from __future__ import annotations

import numpy as np

from hyperplex.bio.synth.panel import Marker

__all__ = ["draw_expression"]

NONSPECIFIC = 0.02  # relative level every cell shows for every marker (antibody background)
CELL_VARIATION = 0.25  # sigma of the per-cell log-normal variation


def draw_expression(rng: np.random.Generator, types: np.ndarray, markers: tuple[Marker, ...]) -> np.ndarray:
    """Relative expression ``(K, C)`` in [0, ~2]: type profile x on/off fraction x log-normal variation.

    Args:
        rng: Random generator.
        types: Cell-type name per cell.
        markers: The panel.

    Returns:
        float64 array, one row per cell.
    """
    levels = np.full((len(types), len(markers)), NONSPECIFIC)
    for j, marker in enumerate(markers):
        for kind, spec in marker.profile.items():
            rows = np.flatnonzero(types == kind)
            level, fraction = spec if isinstance(spec, tuple) else (spec, 1.0)
            on = rng.random(len(rows)) < fraction
            levels[rows[on], j] += level
    return levels * rng.lognormal(0.0, CELL_VARIATION, levels.shape)
