"""Inspector dock widget: click a pixel to plot its spectrum or marker intensities; build additive composites.

Qt glue only; the logic lives in :mod:`hyperplex.plugins._stacks` and :mod:`hyperplex.plugins._composite`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import QComboBox, QFormLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout

from hyperplex.plugins._composite import additive_composite, composite_colors, percentile_limits
from hyperplex.plugins._layers import channel_colors
from hyperplex.plugins._stacks import ChannelStack, Profile, find_stacks, pixel_profile
from hyperplex.plugins._worker_widget import DockWidget, fill_combo, row, spin_box

if TYPE_CHECKING:
    import napari

__all__ = ["InspectorWidget"]

#: Most band layers a composite of a band-axis cube adds.
MAX_COMPOSITE_BANDS = 8
#: Name of the points layer marking the inspected pixel.
MARK_LAYER = "inspected pixel"


def _preview(plane: Any, max_pixels: int = 512 * 512) -> Any:
    h, w = plane.shape[-2:]
    step = max(1, int(np.ceil(np.sqrt(h * w / max_pixels))))
    return plane[::step, ::step]


class InspectorWidget(DockWidget):
    """Spectrum / intensity plot at a clicked pixel, channel picker for an additive composite, contrast.

    Args:
        napari_viewer: The viewer (injected by napari).
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__(napari_viewer)
        self.viewer.mouse_drag_callbacks.append(self._on_mouse)

    def _init_state(self) -> None:
        self.profile: Profile | None = None

    # ------------------------------------------------------------------ UI
    def _build_ui(self) -> None:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.stack_box = QComboBox()
        self.stack_box.currentIndexChanged.connect(self._fill_channels)
        self.figure = Figure(figsize=(4, 2.6), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(220)
        self.axes = self.figure.add_subplot(111)
        self.channel_list = QListWidget()
        self.channel_list.setSelectionMode(QListWidget.ExtendedSelection)
        self.low_box, self.high_box = (spin_box(0.0, 100.0, pct, decimals=1) for pct in (1.0, 99.0))
        self.apply_button = QPushButton("Show composite")
        self.apply_button.clicked.connect(lambda: self.apply_composite())
        self.rgb_button = QPushButton("Add as RGB layer")
        self.rgb_button.clicked.connect(lambda: self.add_rgb_layer())
        self.status = QLabel("Click a pixel to plot its channels.")
        self.status.setWordWrap(True)
        self.setLayout(self._layout())

    def _layout(self) -> QVBoxLayout:
        form = QFormLayout()
        form.addRow("Image", self.stack_box)
        layout = QVBoxLayout()
        layout.addLayout(form)
        layout.addWidget(self.canvas)
        layout.addWidget(QLabel("Channels for the composite (multi-select):"))
        layout.addWidget(self.channel_list)
        layout.addWidget(QLabel("Contrast percentiles (low, high), per channel:"))
        layout.addLayout(row(self.low_box, self.high_box))
        layout.addLayout(row(self.apply_button, self.rgb_button))
        layout.addWidget(self.status)
        return layout

    # ------------------------------------------------------------------ stacks
    def refresh(self, *_: Any) -> None:
        """Re-scan the viewer's layers for channel stacks."""
        stacks = find_stacks(self.viewer.layers)
        self._stacks = [s for s in stacks if not s.layers[0].name.startswith(("composite: ", "RGB composite"))]
        self.stack_box.blockSignals(True)
        fill_combo(self.stack_box, [self._label(s) for s in self._stacks])
        self.stack_box.blockSignals(False)
        self._fill_channels()

    @staticmethod
    def _label(stack: ChannelStack) -> str:
        first = stack.layers[0].name
        return first if stack.band_axis or len(stack.layers) == 1 else f"{first} … ({len(stack.channels)} channels)"

    @property
    def stack(self) -> ChannelStack | None:
        """The stack chosen in the combo box."""
        index = self.stack_box.currentIndex()
        return self._stacks[index] if 0 <= index < len(self._stacks) else None

    def select_stack(self, layer_name: str) -> None:
        """Choose the stack containing the layer called ``layer_name``."""
        for i, stack in enumerate(self._stacks):
            if any(layer.name == layer_name for layer in stack.layers):
                self.stack_box.setCurrentIndex(i)
                return
        raise KeyError(f"No image layer named {layer_name!r}.")

    def _fill_channels(self, *_: Any) -> None:
        self.channel_list.clear()
        stack = self.stack
        if stack is None:
            return
        for name in stack.channels.names:
            self.channel_list.addItem(QListWidgetItem(name))

    # ------------------------------------------------------------------ profile
    def _on_mouse(self, viewer: Any, event: Any) -> None:
        if event.type != "mouse_press":
            return
        self.show_profile(event.position)

    def show_profile(self, world_position: Sequence[float]) -> Profile | None:
        """Plot the chosen stack's values at a world position; returns the profile (None outside)."""
        stack = self.stack
        profile = None if stack is None else pixel_profile(stack, world_position)
        if profile is None:
            return None
        self.profile = profile
        self._plot(profile)
        self._mark(stack, profile)
        return profile

    def _mark(self, stack: ChannelStack, profile: Profile) -> None:
        """Show the inspected pixel as a point (layer ``inspected pixel``)."""
        layer = stack.layers[0]
        world = layer.data_to_world([0] * (layer.ndim - 2) + [profile.row, profile.col])[-2:]
        if MARK_LAYER in self.viewer.layers:
            self.viewer.layers[MARK_LAYER].data = np.asarray([world])
            return
        self.viewer.add_points(
            np.asarray([world]), name=MARK_LAYER, symbol="cross", size=max(float(layer.scale[-1]) * 6, 1e-9),
            face_color="white", border_color="black", units=tuple(str(u) for u in layer.units[-2:]),
        )  # fmt: skip

    def _plot(self, profile: Profile) -> None:
        self.axes.clear()
        if profile.channels.is_spectral:
            self.axes.plot(profile.x, profile.values, lw=1.0)
        else:
            colors = channel_colors(profile.channels)
            self.axes.bar(profile.x, profile.values, color=colors, edgecolor="k", linewidth=0.3)
            self.axes.set_xticks(profile.x, profile.channels.names, rotation=60, fontsize=7)
        self.axes.set_xlabel(profile.xlabel)
        self.axes.set_ylabel("value")
        self.axes.set_title(f"pixel (row {profile.row}, col {profile.col})", fontsize=9)
        self.canvas.draw_idle()
        self.status.setText(f"{len(profile.values)} channels at row {profile.row}, col {profile.col}.")

    # ------------------------------------------------------------------ composite
    def selected_indices(self) -> list[int]:
        """Channel indices selected in the list (all channels when none is, up to the band limit)."""
        rows = sorted(self.channel_list.row(item) for item in self.channel_list.selectedItems())
        return rows or list(range(min(self.channel_list.count(), MAX_COMPOSITE_BANDS)))

    def select_channels(self, keys: Sequence[str | float]) -> list[int]:
        """Select channels by name or wavelength (nm) in the list; returns their indices."""
        stack = self.stack
        if stack is None:
            return []
        indices = [stack.channels.index(k) for k in keys]
        self.channel_list.clearSelection()
        for i in indices:
            self.channel_list.item(i).setSelected(True)
        return indices

    def _limits(self, stack: ChannelStack, indices: Sequence[int]) -> list[tuple[float, float]]:
        planes = stack.planes()
        low, high = self.low_box.value(), self.high_box.value()
        return [percentile_limits(_preview(planes[i]), low, high) for i in indices]

    def apply_composite(self, indices: Sequence[int] | None = None) -> list[Any]:
        """Show the chosen channels additively with percentile contrast; hide the stack's other channels.

        For a band-axis cube, each chosen band is added as its own 2-D layer (``composite: <band>``).

        Returns:
            The layers that make up the composite.
        """
        stack = self.stack
        if stack is None:
            return []
        indices = list(indices) if indices is not None else self.selected_indices()
        limits = self._limits(stack, indices)
        colors = composite_colors(stack.channels[indices])
        layers = self._band_layers(stack, indices) if stack.band_axis else [stack.layers[i] for i in indices]
        if not stack.band_axis:
            for layer in stack.layers:
                layer.visible = False
        for layer, color, lim in zip(layers, colors, limits):
            layer.colormap = color
            layer.blending = "additive"
            layer.contrast_limits = lim
            layer.visible = True
        self.status.setText(f"Composite of {len(layers)} channels: {', '.join(stack.channels[indices].names)}.")
        return layers

    def _band_layers(self, stack: ChannelStack, indices: Sequence[int]) -> list[Any]:
        cube = stack.layers[0]
        cube.visible = False
        for layer in [lyr for lyr in self.viewer.layers if lyr.name.startswith("composite: ")]:
            self.viewer.layers.remove(layer)
        planes = stack.planes()
        spatial = {"scale": tuple(cube.scale[-2:]), "units": tuple(str(u) for u in cube.units[-2:])}
        return [
            self.viewer.add_image(planes[i], name=f"composite: {stack.channels.names[i]}", **spatial)
            for i in indices[:MAX_COMPOSITE_BANDS]
        ]

    def add_rgb_layer(self, indices: Sequence[int] | None = None) -> Any:
        """Compute the composite in numpy and add it as one RGB layer (for export or comparison)."""
        stack = self.stack
        if stack is None:
            return None
        indices = list(indices) if indices is not None else self.selected_indices()
        planes = [stack.planes()[i] for i in indices]
        colors = composite_colors(stack.channels[indices])
        rgb = additive_composite(planes, colors, self._limits(stack, indices))
        return self.viewer.add_image(
            rgb, rgb=True, name=f"RGB composite ({', '.join(stack.channels[indices].names)})",
            scale=tuple(stack.layers[0].scale[-2:]), units=tuple(str(u) for u in stack.layers[0].units[-2:]),
        )  # fmt: skip

    def closeEvent(self, event: Any) -> None:
        """Detach the mouse callback when the dock closes."""
        if self._on_mouse in self.viewer.mouse_drag_callbacks:
            self.viewer.mouse_drag_callbacks.remove(self._on_mouse)
        super().closeEvent(event)
