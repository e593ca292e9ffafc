"""``tissue()``: a synthetic multiplex image of tissue with known cells and known per-cell expression."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hyperplex.bio.pyramid import pyramid
from hyperplex.bio.synth.expression import draw_expression
from hyperplex.bio.synth.he import render_he
from hyperplex.bio.synth.layout import make_layout
from hyperplex.bio.synth.panel import MARKERS, marker_panel
from hyperplex.bio.synth.render import PSF_SIGMA_PX, render_clean, render_optics
from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import InvalidParameterError
from hyperplex.common.image import MultiscaleImage

__all__ = ["SyntheticTissue", "synthetic_tissue", "tissue"]

PIXEL_SIZE_UM = 0.5


@dataclass
class SyntheticTissue:
    """A synthetic multiplex tissue and its truth.

    Attributes:
        image: ``(C, H, W)`` uint16 fluorescence counts.
        channels: Marker names and display colours.
        he: ``(3, H, W)`` uint8 H&E rendering of the same tissue.
        cells: ``(H, W)`` int32 whole-cell labels 1..K (0 = outside cells).
        nuclei: ``(H, W)`` int32 nucleus labels (same ids as ``cells``).
        expression: ``(K, C)`` truth: mean noise-free, unblurred signal (counts above ``background``) over
            each cell's mask; row ``k - 1`` is cell ``k``.
        cell_types: ``(K,)`` cell-type names.
        compartments: Per channel, where the marker stains (nucleus / cytoplasm / membrane).
        background: ``(C,)`` camera offset in counts (add it to ``expression`` to compare with raw means).
        pixel_size_um: Pixel size in µm (square pixels).
        params: The generation parameters (size, markers, cells, seed).
    """

    image: np.ndarray
    channels: ChannelSet
    he: np.ndarray
    cells: np.ndarray
    nuclei: np.ndarray
    expression: np.ndarray
    cell_types: np.ndarray
    compartments: tuple[str, ...]
    background: np.ndarray
    pixel_size_um: float = PIXEL_SIZE_UM
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """Number of cells K."""
        return len(self.cell_types)

    def centroids(self) -> np.ndarray:
        """``(K, 2)`` cell centroids ``(y, x)`` in pixels."""
        area = np.bincount(self.cells.ravel(), minlength=self.count + 1)[1:]
        yy, xx = np.indices(self.cells.shape)
        sums = [np.bincount(self.cells.ravel(), c.ravel(), minlength=self.count + 1)[1:] for c in (yy, xx)]
        return np.stack(sums, axis=1) / np.maximum(area, 1)[:, None]

    def cell_means(self, image: np.ndarray | None = None, *, subtract_background: bool = True) -> np.ndarray:
        """Per-cell mean of each channel of ``image`` over the cell masks, comparable to ``expression``.

        Use it to score a prediction (e.g. multiplex channels predicted from the H&E) against the truth.

        Args:
            image: ``(C, H, W)`` array on this tissue's grid; default the fluorescence image itself.
            subtract_background: Subtract the camera offset (only for this tissue's own channels).

        Returns:
            ``(K, C)`` float64 means, row ``k - 1`` for cell ``k``.

        Raises:
            InvalidParameterError: If ``image`` is not ``(C, H, W)`` on the tissue's grid.
        """
        data = self.image if image is None else np.asarray(image)
        if data.ndim != 3 or data.shape[1:] != self.cells.shape:
            raise InvalidParameterError(
                f"`image` must be (C, {self.cells.shape[0]}, {self.cells.shape[1]}); got {data.shape}."
            )
        means = _cell_means(data, self.cells, self.count)
        if subtract_background and data.shape[0] == len(self.background):
            means = means - self.background
        return means

    def to_image(self, levels: int | None = None) -> MultiscaleImage:
        """The fluorescence image as a (lazy, in-memory) multiscale image with marker channels."""
        return MultiscaleImage(pyramid(self.image, levels), self.channels, (self.pixel_size_um,) * 2)

    def he_image(self, levels: int | None = None) -> MultiscaleImage:
        """The H&E rendering as a 3-channel ``R, G, B`` multiscale image."""
        rgb = ChannelSet.from_names(("R", "G", "B"), colors=("#FF0000", "#00FF00", "#0000FF"))
        return MultiscaleImage(pyramid(self.he, levels), rgb, (self.pixel_size_um,) * 2)

    def table(self) -> Any:
        """Per-cell truth as a pandas DataFrame: id, type, centroid, areas, one column per marker."""
        import pandas as pd

        area = np.bincount(self.cells.ravel(), minlength=self.count + 1)[1:]
        nucleus_area = np.bincount(self.nuclei.ravel(), minlength=self.count + 1)[1:]
        cy, cx = self.centroids().T
        frame = {"cell_id": np.arange(1, self.count + 1), "cell_type": self.cell_types}
        frame |= {"centroid_y": cy, "centroid_x": cx, "area_px": area, "nucleus_area_px": nucleus_area}
        frame |= {name: self.expression[:, j] for j, name in enumerate(self.channels.names)}
        return pd.DataFrame(frame)


def tissue(
    size: int = 512,
    markers: int = 8,
    cells: int | None = None,
    seed: int = 0,
    *,
    he: bool = True,
    psf_sigma_px: float = PSF_SIGMA_PX,
) -> SyntheticTissue:
    """Generate a synthetic multiplex tissue with known cell masks and known per-cell expression.

    Tumour nests (PanCK+ epithelium), stroma (fibroblasts, vessels, T cells, macrophages) and a lymphoid
    follicle (B cells) are laid out from smooth random fields; cells are elliptical with nuclei, drawn
    with type-specific size and shape, so the H&E morphology predicts the markers.

    Args:
        size: Image edge in pixels (0.5 µm pixels), 32 to 8192.
        markers: Number of marker channels (1-60; DAPI first).
        cells: Maximum number of cells; None fills the tissue (about 2,900 cells at 1024 px).
        seed: Random seed; the same arguments always give the same tissue.
        he: Also render the H&E image (else ``he`` is an empty array).
        psf_sigma_px: Microscope PSF (Gaussian sigma, pixels). Blur moves about 20% of a membrane marker's
            signal out of its cell and about 10% of a cytoplasmic one; 0 turns it off.

    Returns:
        The tissue with truth.

    Raises:
        InvalidParameterError: If an argument is out of range.
    """
    _check(size, cells)
    panel = marker_panel(markers)
    n = len(panel)
    # independent streams: the tissue and H&E do not depend on `markers`, and channel j is the same for any panel size
    seeds = np.random.SeedSequence(seed).spawn(6)
    r_layout, r_expr, r_optics, r_texture, r_he = (np.random.default_rng(s) for s in seeds[:5])
    layout = make_layout(r_layout, size, cells)
    if layout.count == 0:
        raise InvalidParameterError(f"No cell fits in a {size} px tissue with seed {seed}; use a larger size.")
    levels = draw_expression(r_expr, layout.types, MARKERS)  # the whole catalogue, then the panel's columns
    brightness, background, autofluorescence = _optics(r_optics)
    clean = render_clean(layout, panel, levels[:, :n] * brightness[:n], r_texture)
    truth = _cell_means(clean, layout.cells, layout.count)
    noise = [np.random.default_rng(s) for s in seeds[5].spawn(n)]
    image = render_optics(clean, layout, background[:n], autofluorescence[:n], noise, psf_sigma_px)
    ki67 = levels[:, [m.name for m in MARKERS].index("Ki67")]
    rgb = render_he(layout, ki67, r_he) if he else np.zeros((3, 0, 0), np.uint8)
    params = {"size": size, "markers": markers, "cells": cells, "seed": seed, "psf_sigma_px": psf_sigma_px}
    channels = ChannelSet.from_names([m.name for m in panel], colors=[m.color for m in panel])
    return SyntheticTissue(image, channels, rgb, layout.cells, layout.nuclei, truth, layout.types,
                           tuple(m.compartment for m in panel), background[:n], PIXEL_SIZE_UM, params)  # fmt: skip


def _check(size: int, cells: int | None) -> None:
    if not 32 <= int(size) <= 8192:
        raise InvalidParameterError(f"`size` must be between 32 and 8192 pixels; got {size}.")
    if cells is not None and cells < 1:
        raise InvalidParameterError(f"`cells` must be at least 1 (or None to fill the tissue); got {cells}.")


def _optics(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per catalogue marker: counts at level 1 (DAPI 2500, others 700-2500), camera offset, autofluorescence."""
    brightness = rng.uniform(700, 2500, len(MARKERS))
    brightness[[m.name for m in MARKERS].index("DAPI")] = 2500.0
    return brightness, rng.uniform(90, 160, len(MARKERS)).round(), rng.uniform(10, 60, len(MARKERS))


def _cell_means(image: np.ndarray, cells: np.ndarray, count: int) -> np.ndarray:
    area = np.maximum(np.bincount(cells.ravel(), minlength=count + 1)[1:], 1)
    flat = cells.ravel()
    return np.stack(
        [np.bincount(flat, c.ravel().astype(np.float64), minlength=count + 1)[1:] / area for c in image], axis=1
    )


def synthetic_tissue(size: int = 256, markers: int = 8, seed: int = 0, levels: int | None = None) -> MultiscaleImage:
    """Just the multiplex image of :func:`tissue` as a :class:`MultiscaleImage` (for viewers and demos)."""
    return tissue(size=size, markers=markers, seed=seed, he=False).to_image(levels)
