"""Models dock widget: preset or saved model; tiled embeddings as a PCA colour map; H&E -> multiplex channels.

torch and the model zoo are imported when the dock is opened (to list presets) and when a job runs,
never at napari start-up. Jobs run in a worker thread with progress and cancel.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from qtpy.QtWidgets import QComboBox, QFileDialog, QFormLayout, QLineEdit, QPushButton, QVBoxLayout

from hyperplex.plugins._layers import _preview
from hyperplex.plugins._models import (
    EmbeddingResult,
    PredictionResult,
    compute_embeddings,
    embedding_layer,
    list_presets,
    predict_channels,
    prediction_layers,
    resolve_model,
)
from hyperplex.plugins._stacks import ChannelStack, find_stacks
from hyperplex.plugins._worker_widget import Progress, WorkerWidget, fill_combo, row, spin_box

__all__ = ["ModelsWidget"]


class ModelsWidget(WorkerWidget):
    """Run hyperplex models on layers: embeddings (PCA colour map) and H&E -> multiplex prediction.

    Args:
        napari_viewer: The viewer (injected by napari).
    """

    last_result: EmbeddingResult | PredictionResult | None

    # ------------------------------------------------------------------ UI
    def _build_ui(self) -> None:
        self.preset_box = QComboBox()
        self.preset_box.addItems(list_presets())
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("or a saved model (.safetensors)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.image_box, self.he_box = QComboBox(), QComboBox()
        self.tile_box, self.overlap_box = spin_box(16, 4096, 128, step=16), spin_box(0, 1024, 16, step=8)
        self.embed_button = QPushButton("Compute embeddings")
        self.embed_button.clicked.connect(lambda: self.compute_embeddings())
        self.predict_button = QPushButton("Predict channels from H&&E")
        self.predict_button.clicked.connect(lambda: self.predict_channels())
        self.status.setWordWrap(True)
        self.setLayout(self._layout(browse))

    def _layout(self, browse: QPushButton) -> QVBoxLayout:
        form = QFormLayout()
        form.addRow("Preset", self.preset_box)
        form.addRow("Model file", row(self.path_edit, browse))
        form.addRow("Tile / overlap (px)", row(self.tile_box, self.overlap_box))
        form.addRow("Multichannel image", self.image_box)
        form.addRow("H&&E image", self.he_box)
        layout = QVBoxLayout()
        layout.addLayout(form)
        for widget in (self.embed_button, self.predict_button, self.cancel_button, self.progress, self.status):
            layout.addWidget(widget)
        return layout

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Saved hyperplex model", "", "Models (*.safetensors)")
        if path:
            self.path_edit.setText(path)

    def refresh(self, *_: Any) -> None:
        """Re-list multichannel stacks and H&E candidates (RGB layers)."""
        self._stacks = [s for s in find_stacks(self.viewer.layers) if not s.layers[0].name.startswith("embeddings")]
        fill_combo(self.image_box, [self._label(s) for s in self._stacks])
        rgb = [layer.name for layer in self.viewer.layers if getattr(layer, "rgb", False)]
        fill_combo(self.he_box, [n for n in rgb if not n.startswith("embeddings")])

    @staticmethod
    def _label(stack: ChannelStack) -> str:
        first = stack.layers[0].name
        return first if len(stack.layers) == 1 else f"{first} … ({len(stack.channels)} channels)"

    def model_source(self) -> str:
        """The saved-model path when one is given, else the chosen preset."""
        return self.path_edit.text().strip() or self.preset_box.currentText()

    # ------------------------------------------------------------------ jobs
    def _embedding_job(self) -> Generator[Progress, None, EmbeddingResult]:
        index = self.image_box.currentIndex()
        if not 0 <= index < len(self._stacks):
            raise ValueError("Open a multichannel image first.")
        stack = self._stacks[index]
        source = self.model_source()
        model = resolve_model(source)
        data = stack.layers[0].data
        levels = list(data) if stack.layers[0].multiscale else [data]
        image = levels[0] if stack.band_axis else _stack_planes(stack)
        preview = _preview([lvl for lvl in levels]) if stack.band_axis else _stack_planes(stack, preview=True)
        return (
            yield from compute_embeddings(
                model, source, image, stack.channels, preview,
                tile_size=self.tile_box.value(), overlap=self.overlap_box.value(),
            )
        )  # fmt: skip

    def _prediction_job(self) -> Generator[Progress, None, PredictionResult]:
        name = self.he_box.currentText()
        if name not in self.viewer.layers:
            raise ValueError("Open an RGB H&E image first.")
        layer = self.viewer.layers[name]
        rgb = layer.data[0] if layer.multiscale else layer.data
        source = self.model_source()
        return (
            yield from predict_channels(
                resolve_model(source), source, rgb, tile_size=self.tile_box.value(), overlap=self.overlap_box.value()
            )
        )

    def compute_embeddings(self, *, blocking: bool = False) -> Any:
        """Embed the chosen image tile by tile and add the PCA colour map (in a worker unless ``blocking``)."""
        return self._start(self._embedding_job, self._on_embedding, blocking)

    def predict_channels(self, *, blocking: bool = False) -> Any:
        """Predict multiplex channels from the chosen H&E layer and add them as layers."""
        return self._start(self._prediction_job, self._on_prediction, blocking)

    def _run_buttons(self) -> list[QPushButton]:
        return [self.embed_button, self.predict_button]

    # ------------------------------------------------------------------ results
    def _source_spatial(self, layer: Any) -> dict[str, Any]:
        return {"scale": tuple(layer.scale[-2:]), "units": tuple(str(u) for u in layer.units[-2:])}

    def _replace(self, data: Any, kwargs: dict[str, Any], kind: str) -> Any:
        if kwargs["name"] in self.viewer.layers:
            self.viewer.layers.remove(kwargs["name"])
        return getattr(self.viewer, f"add_{kind}")(data, **kwargs)

    def _on_embedding(self, result: EmbeddingResult) -> None:
        self.last_result = result
        stack = self._stacks[self.image_box.currentIndex()]
        self._replace(*embedding_layer(result, **self._source_spatial(stack.layers[0])))
        note = f" ({result.note})" if result.note else ""
        ratio = ", ".join(f"{v:.2f}" for v in result.explained)
        self.status.setText(f"embeddings of {result.model_name}: PCA explained variance {ratio}{note}")

    def _on_prediction(self, result: PredictionResult) -> None:
        self.last_result = result
        layer = self.viewer.layers[self.he_box.currentText()]
        for data, kwargs, kind in prediction_layers(result, **self._source_spatial(layer)):
            self._replace(data, kwargs, kind)
        self.status.setText(f"{len(result.channels)} channels predicted by {result.model_name}")


def _stack_planes(stack: ChannelStack, *, preview: bool = False) -> Any:
    """``(C, H, W)`` dask view of a layer-per-channel stack (its coarsest level when ``preview``)."""
    import dask.array as da

    def level(layer: Any) -> Any:
        if not layer.multiscale:
            return layer.data
        return layer.data[-1] if preview else layer.data[0]

    planes = da.stack([da.asarray(level(layer)) for layer in stack.layers])
    return _preview([planes]) if preview else planes
