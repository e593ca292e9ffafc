"""The marker panel of the synthetic tissue: 60 real marker names, their compartment and cell-type profiles.

Levels are relative expression (0 = absent, 1 = bright) per cell type; a ``(level, fraction)`` pair means
only that fraction of the type's cells expresses the marker (e.g. Ki67 in proliferating tumour cells).
"""

from __future__ import annotations

from dataclasses import dataclass

from hyperplex.common.errors import InvalidParameterError

__all__ = ["CELL_TYPES", "MARKERS", "Marker", "marker_panel"]

#: Cell types with morphology used by the layout and the H&E rendering:
#: radius (px at 0.5 µm), elongation, nucleus/cell size ratio, hematoxylin and eosin density, share per region.
CELL_TYPES: dict[str, dict[str, float]] = {
    "tumor": {"radius": 11.0, "elong": 1.2, "nucleus": 0.55, "hema": 0.75, "eosin": 0.55},
    "cd8_t": {"radius": 6.0, "elong": 1.05, "nucleus": 0.78, "hema": 1.15, "eosin": 0.25},
    "cd4_t": {"radius": 6.5, "elong": 1.05, "nucleus": 0.76, "hema": 1.1, "eosin": 0.25},
    "b_cell": {"radius": 6.5, "elong": 1.05, "nucleus": 0.8, "hema": 1.2, "eosin": 0.2},
    "macrophage": {"radius": 12.0, "elong": 1.3, "nucleus": 0.4, "hema": 0.6, "eosin": 0.4},
    "fibroblast": {"radius": 10.0, "elong": 3.2, "nucleus": 0.45, "hema": 0.9, "eosin": 0.65},
    "endothelial": {"radius": 9.0, "elong": 2.6, "nucleus": 0.42, "hema": 0.85, "eosin": 0.45},
}

_ALL = {t: 1.0 for t in CELL_TYPES}
_IMMUNE = {"cd8_t": 1.0, "cd4_t": 1.0, "b_cell": 1.0, "macrophage": 0.8}


@dataclass(frozen=True)
class Marker:
    """One marker channel: name, where in the cell it stains, display colour, and per-type expression."""

    name: str
    compartment: str  # "nucleus", "cytoplasm" or "membrane"
    color: str
    profile: dict[str, float | tuple[float, float]]


def _m(name: str, compartment: str, color: str, **profile: float | tuple[float, float]) -> Marker:
    return Marker(name, compartment, color, dict(profile))


MARKERS: tuple[Marker, ...] = (
    _m("DAPI", "nucleus", "#0000FF", **_ALL),
    _m("CD3", "membrane", "#FF0000", cd8_t=1.0, cd4_t=1.0),
    _m("CD8", "membrane", "#00FF00", cd8_t=1.0),
    _m("CD20", "membrane", "#FF00FF", b_cell=1.0),
    _m("PanCK", "cytoplasm", "#FFFF00", tumor=1.0),
    _m("Ki67", "nucleus", "#00FFFF", tumor=(0.9, 0.35), cd8_t=(0.7, 0.1), b_cell=(0.8, 0.25), cd4_t=(0.7, 0.08)),
    _m("CD68", "cytoplasm", "#FF8000", macrophage=1.0),
    _m("CD4", "membrane", "#8000FF", cd4_t=1.0, macrophage=0.3),
    _m("CD45", "membrane", "#FF0080", **_IMMUNE),
    _m("SMA", "cytoplasm", "#80FF00", fibroblast=1.0),
    _m("CD31", "membrane", "#0080FF", endothelial=1.0),
    _m("FOXP3", "nucleus", "#FF4040", cd4_t=(0.9, 0.3)),
    _m("E-cadherin", "membrane", "#C0C000", tumor=0.9),
    _m("Vimentin", "cytoplasm", "#40C040", fibroblast=1.0, endothelial=0.8, macrophage=0.5),
    _m("PD-1", "membrane", "#C04000", cd8_t=(0.8, 0.4), cd4_t=(0.7, 0.2)),
    _m("PD-L1", "membrane", "#4000C0", tumor=(0.7, 0.3), macrophage=(0.8, 0.5)),
    _m("Granzyme B", "cytoplasm", "#00C080", cd8_t=(0.9, 0.5)),
    _m("CD163", "membrane", "#C08000", macrophage=(0.9, 0.6)),
    _m("HLA-DR", "membrane", "#8080FF", b_cell=0.9, macrophage=0.9, tumor=(0.4, 0.2)),
    _m("CD11c", "membrane", "#FF80C0", macrophage=0.7),
    _m("CD14", "membrane", "#A0A000", macrophage=0.8),
    _m("CD19", "membrane", "#E000E0", b_cell=0.9),
    _m("CD79a", "cytoplasm", "#B000B0", b_cell=0.8),
    _m("PAX5", "nucleus", "#FF60FF", b_cell=0.9),
    _m("CD2", "membrane", "#E04040", cd8_t=0.8, cd4_t=0.8),
    _m("CD7", "membrane", "#B03030", cd8_t=0.7, cd4_t=0.7),
    _m("CD5", "membrane", "#D05050", cd8_t=0.6, cd4_t=0.7),
    _m("CD34", "membrane", "#0060C0", endothelial=0.9, fibroblast=(0.5, 0.2)),
    _m("vWF", "cytoplasm", "#2090E0", endothelial=0.8),
    _m("Podoplanin", "membrane", "#60A0A0", fibroblast=(0.7, 0.4), endothelial=(0.6, 0.3)),
    _m("FAP", "membrane", "#70D070", fibroblast=(0.9, 0.6)),
    _m("PDGFRb", "membrane", "#50B050", fibroblast=0.8),
    _m("CD90", "membrane", "#90E090", fibroblast=0.6, endothelial=0.4),
    _m("Collagen IV", "membrane", "#A0A0A0", endothelial=0.7, fibroblast=0.4),
    _m("Keratin 8", "cytoplasm", "#E0E000", tumor=0.9),
    _m("Keratin 5", "cytoplasm", "#F0D000", tumor=(0.8, 0.3)),
    _m("EpCAM", "membrane", "#D0D040", tumor=0.8),
    _m("Beta-catenin", "membrane", "#B0B030", tumor=0.7, endothelial=0.3),
    _m("HER2", "membrane", "#F0A000", tumor=(0.9, 0.5)),
    _m("p53", "nucleus", "#00D0D0", tumor=(0.9, 0.6)),
    _m("Histone H3", "nucleus", "#4060FF", **_ALL),
    _m("pH3", "nucleus", "#00A0FF", tumor=(0.9, 0.05), b_cell=(0.8, 0.03)),
    _m("Cleaved caspase-3", "cytoplasm", "#FF2020", tumor=(0.8, 0.04), cd8_t=(0.6, 0.02)),
    _m("CD206", "membrane", "#E0A040", macrophage=(0.8, 0.5)),
    _m("CD11b", "membrane", "#D09030", macrophage=0.7),
    _m("CD57", "membrane", "#60E0A0", cd8_t=(0.7, 0.2)),
    _m("CD45RO", "membrane", "#FF6090", cd4_t=(0.8, 0.6), cd8_t=(0.8, 0.5)),
    _m("CD45RA", "membrane", "#FF90B0", cd4_t=(0.8, 0.4), cd8_t=(0.8, 0.5), b_cell=0.7),
    _m("LAG-3", "membrane", "#A04080", cd8_t=(0.7, 0.2), cd4_t=(0.6, 0.1)),
    _m("TIM-3", "membrane", "#8040A0", cd8_t=(0.7, 0.2), macrophage=(0.5, 0.3)),
    _m("ICOS", "membrane", "#C060E0", cd4_t=(0.7, 0.3)),
    _m("CD38", "membrane", "#60C0E0", b_cell=(0.8, 0.4), cd8_t=(0.5, 0.2)),
    _m("IDO1", "cytoplasm", "#E06060", tumor=(0.6, 0.2), macrophage=(0.6, 0.3)),
    _m("MHC-I", "membrane", "#A0C0FF", **{t: 0.6 for t in CELL_TYPES}),
    _m("Lamin B1", "nucleus", "#3050D0", **{t: 0.8 for t in CELL_TYPES}),
    _m("ATP5A", "cytoplasm", "#D0A0A0", **({t: 0.5 for t in CELL_TYPES} | {"tumor": 0.8})),
    _m("GLUT1", "membrane", "#F08080", tumor=(0.8, 0.5)),
    _m("CA9", "membrane", "#F06040", tumor=(0.8, 0.3)),
    _m("Na-K-ATPase", "membrane", "#B0B0E0", **{t: 0.5 for t in CELL_TYPES}),
    _m("CD15", "membrane", "#E0E0A0", tumor=(0.6, 0.1), macrophage=(0.4, 0.2)),
)


def marker_panel(count: int) -> tuple[Marker, ...]:
    """The first ``count`` markers of :data:`MARKERS` (DAPI first, then the common immuno-oncology panel).

    Raises:
        InvalidParameterError: If ``count`` is not between 1 and the catalogue size (60).
    """
    if not 1 <= count <= len(MARKERS):
        raise InvalidParameterError(f"`markers` must be between 1 and {len(MARKERS)}; got {count}.")
    return MARKERS[:count]
