"""Methane dock widget: pick a cube, method and window; run in a worker thread with progress and cancel.

Results arrive as an enhancement image (ppm·m, colour bar), a plume labels layer (the plume table as
its features) and the table in the dock. Logic lives in :mod:`hyperplex.plugins._methane`.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import numpy as np
from qtpy.QtWidgets import QComboBox, QFormLayout, QLabel, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout

from hyperplex.common.arrays import materialize
from hyperplex.plugins._layers import META_KEY
from hyperplex.plugins._methane import MethaneResult, analyze_cube, analyze_file, methane_layers, method_choices
from hyperplex.plugins._stacks import ChannelStack, find_stacks
from hyperplex.plugins._worker_widget import Progress, WorkerWidget, fill_combo, row, spin_box

__all__ = ["MethaneWidget"]

#: Formats whose files the widget hands to the command line's pipeline (chunked reads of the needed bands).
FILE_FORMATS = ("emit", "envi", "geotiff")


def _source_file(stack: ChannelStack) -> str | None:
    """The radiance file a stack was opened from, when the pipeline reads its format; else None."""
    meta = getattr(stack.layers[0], "metadata", {}).get(META_KEY, {})
    source = meta.get("source")
    return source if source and meta.get("format") in FILE_FORMATS and os.path.isfile(source) else None


def _lazy_cube(stack: ChannelStack) -> Any:
    """The stack as a ``(bands, H, W)`` array without reading a band-axis layer (per-channel layers are stacked)."""
    if stack.band_axis:
        layer = stack.layers[0]
        return layer.data[0] if layer.multiscale else layer.data
    return np.stack([materialize(p) for p in stack.planes()]).astype(np.float32)


def compute_methane(
    stack: ChannelStack, method: str, window: tuple[float, float], pixel_size_m: float | None
) -> Generator[Progress, None, MethaneResult]:
    """The widget's computation as a generator: yields ``(fraction, stage)``, returns the result.

    A layer opened from a radiance file runs the command line's pipeline on the file
    (:func:`analyze_file`); any other layer runs it on the layer's array, read in row blocks.
    """
    path = _source_file(stack)
    yield 0.05, f"running {method} ({'chunked reads of ' + os.path.basename(path) if path else 'layer data'})"
    if path is not None:
        result = analyze_file(method, path, window=window)
    else:
        channels = stack.channels
        result = analyze_cube(method, _lazy_cube(stack), channels.wavelengths, channels.fwhm, window=window,
                              pixel_size_m=pixel_size_m)  # fmt: skip
    yield 1.0, "done"
    return result


class MethaneWidget(WorkerWidget):
    """Run a CH4 detector on a hyperspectral layer and show enhancement, plumes and the plume table.

    Args:
        napari_viewer: The viewer (injected by napari).
    """

    last_result: MethaneResult | None

    def _build_ui(self) -> None:
        self.cube_box = QComboBox()
        self.method_box = QComboBox()
        self.method_box.addItems(method_choices())
        self.low_box, self.high_box = (spin_box(300.0, 2600.0, nm, decimals=1) for nm in (2122.0, 2488.0))
        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(lambda: self.run())
        self.table = QTableWidget(0, 0)
        form = QFormLayout()
        form.addRow("Radiance cube", self.cube_box)
        form.addRow("Method", self.method_box)
        form.addRow("Window (nm)", row(self.low_box, self.high_box))
        layout = QVBoxLayout()
        for item in (form, row(self.run_button, self.cancel_button)):
            layout.addLayout(item)
        for widget in (self.progress, self.status, QLabel("Plumes:"), self.table):
            layout.addWidget(widget)
        self.setLayout(layout)

    def _run_buttons(self) -> list[QPushButton]:
        return [self.run_button]

    def refresh(self, *_: Any) -> None:
        """List the spectral stacks (at least 10 bands with wavelengths)."""
        stacks = [s for s in find_stacks(self.viewer.layers) if s.channels.is_spectral and len(s.channels) >= 10]
        self._stacks = stacks
        fill_combo(self.cube_box, [s.layers[0].name for s in stacks])

    @property
    def stack(self) -> ChannelStack | None:
        """The chosen cube."""
        index = self.cube_box.currentIndex()
        return self._stacks[index] if 0 <= index < len(self._stacks) else None

    def _job(self) -> Generator[Progress, None, MethaneResult]:
        stack = self.stack
        if stack is None:
            raise ValueError("Open a hyperspectral cube with wavelengths first (e.g. File > Open Sample > EMIT).")
        layer = stack.layers[0]
        units = [str(u) for u in getattr(layer, "units", ())][-1:]
        pixel = float(layer.scale[-1]) if units == ["meter"] else None
        window = (self.low_box.value(), self.high_box.value())
        return compute_methane(stack, self.method_box.currentText(), window, pixel)

    # ------------------------------------------------------------------ running
    def run(self, *, blocking: bool = False) -> Any:
        """Start the computation in a worker thread (or here, when ``blocking``); returns the worker or result."""
        job = self._job()
        return self._start(lambda: job, self._on_result, blocking)

    def _on_result(self, result: MethaneResult) -> None:
        self.last_result = result
        stack_layer = self.stack.layers[0] if self.stack is not None else None
        scale = None if stack_layer is None else tuple(stack_layer.scale[-2:])
        units = None if stack_layer is None else tuple(str(u) for u in stack_layer.units[-2:])
        for data, kwargs, kind in methane_layers(result, scale=scale, units=units):
            name = kwargs["name"]
            if name in self.viewer.layers:
                self.viewer.layers.remove(name)
            layer = getattr(self.viewer, f"add_{kind}")(data, **kwargs)
            if kind == "image":
                layer.colorbar.visible = True
        self._fill_table(result.table)
        self.status.setText(f"{len(result.table['label'])} plumes ({result.method}, {result.units})")

    def _fill_table(self, table: dict[str, np.ndarray]) -> None:
        columns = list(table)
        rows = len(table["label"])
        self.table.setColumnCount(len(columns))
        self.table.setRowCount(rows)
        self.table.setHorizontalHeaderLabels(columns)
        for c, key in enumerate(columns):
            for r in range(rows):
                value = table[key][r]
                text = f"{value:.4g}" if isinstance(value, (float, np.floating)) else str(value)
                self.table.setItem(r, c, QTableWidgetItem(text))
