"""Synthetic multiplex microscopy with known truth: cell masks, per-cell marker expression, and H&E.

``tissue(size, markers, cells, seed)`` returns the arrays and truth in memory; ``write_dataset`` writes
them as pyramidal OME-TIFF and OME-Zarr plus label masks and per-cell tables.
"""

from hyperplex.bio.synth.panel import CELL_TYPES, MARKERS, Marker, marker_panel
from hyperplex.bio.synth.save import write_dataset
from hyperplex.bio.synth.tissue import SyntheticTissue, synthetic_tissue, tissue

__all__ = [
    "CELL_TYPES",
    "MARKERS",
    "Marker",
    "SyntheticTissue",
    "marker_panel",
    "synthetic_tissue",
    "tissue",
    "write_dataset",
]
