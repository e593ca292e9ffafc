"""Models dock widget: presets suited to the chosen image; tiled embeddings as a PCA colour map; H&E -> markers.

The chosen image decides the kind of preset offered (marker names: microscopy, wavelengths:
hyperspectral, an RGB layer: H&E) and which action runs. Pretrained presets come first (the default);
the "Weights" row says whether the chosen preset is pretrained or UNTRAINED (random weights), and a note
says what its channel sizing means and what the PCA colours mean. A pretrained preset sets the tile size
to the one it was trained at; an untrained one is sized to the image's channels. torch and the model zoo are
imported when the dock is opened (to list presets) and when a job runs, never at napari start-up. Jobs
run in a worker thread with progress and cancel.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from qtpy.QtWidgets import QComboBox, QFileDialog, QFormLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout

from hyperplex.plugins._he_predict import SlidePrediction, predict_layer, slide_layers
from hyperplex.plugins._layers import _preview
from hyperplex.plugins._models import (
    PCA_NOTE,
    EmbeddingResult,
    compute_embeddings,
    embedding_layer,
    input_kind,
    is_model_file,
    model_note,
    preset_weights,
    presets_for,
    resolve_model,
    trained_tile_size,
)
from hyperplex.plugins._stacks import ChannelStack, find_stacks
from hyperplex.plugins._worker_widget import Progress, WorkerWidget, fill_combo, row, spin_box

__all__ = ["ModelsWidget"]

_KIND_LABELS = {"microscopy": "microscopy (marker names)", "hyperspectral": "hyperspectral (wavelengths)"}


class ModelsWidget(WorkerWidget):
    """Run hyperplex models on layers: embeddings (PCA colour map) and H&E -> multiplex prediction.

    Args:
        napari_viewer: The viewer (injected by napari).
    """

    last_result: EmbeddingResult | SlidePrediction | None

    # ------------------------------------------------------------------ UI
    def _build_ui(self) -> None:
        self._rgb: list[str] = []
        self._job_input: Any = None
        self.image_box, self.preset_box = QComboBox(), QComboBox()
        self.kind_label, self.note_label, self.weights_label = QLabel(""), QLabel(""), QLabel("")
        self.note_label.setWordWrap(True)
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("or a saved model (.safetensors)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.tile_box, self.overlap_box = spin_box(16, 4096, 128, step=16), spin_box(0, 1024, 16, step=8)
        self.embed_button = QPushButton("Compute embeddings")
        self.embed_button.clicked.connect(lambda: self.compute_embeddings())
        self.predict_button = QPushButton("Predict channels from H&&E")
        self.predict_button.clicked.connect(lambda: self.predict_channels())
        self.status.setWordWrap(True)
        self.setLayout(self._layout(browse))
        self.image_box.currentIndexChanged.connect(self._update_presets)
        self.preset_box.currentTextChanged.connect(self._update_note)
        self.preset_box.currentTextChanged.connect(self._use_trained_tile)
        self.path_edit.textChanged.connect(self._update_note)

    def _layout(self, browse: QPushButton) -> QVBoxLayout:
        form = QFormLayout()
        form.addRow("Image", self.image_box)
        form.addRow("Input kind", self.kind_label)
        form.addRow("Preset", self.preset_box)
        form.addRow("Weights", self.weights_label)
        form.addRow("Model file", row(self.path_edit, browse))
        form.addRow("Tile / overlap (px)", row(self.tile_box, self.overlap_box))
        layout = QVBoxLayout()
        layout.addLayout(form)
        widgets = (self.note_label, self.embed_button, self.predict_button, self.cancel_button, self.progress)
        for widget in (*widgets, self.status):
            layout.addWidget(widget)
        return layout

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Saved hyperplex model", "", "Models (*.safetensors)")
        if path:
            self.path_edit.setText(path)

    def refresh(self, *_: Any) -> None:
        """Re-list the images: multichannel stacks, then RGB layers (H&E candidates)."""
        self._stacks = [s for s in find_stacks(self.viewer.layers) if not s.layers[0].name.startswith("embeddings")]
        rgb = [layer.name for layer in self.viewer.layers if getattr(layer, "rgb", False)]
        self._rgb = [n for n in rgb if not n.startswith("embeddings")]
        fill_combo(self.image_box, [self._label(s) for s in self._stacks] + [f"{n} (RGB)" for n in self._rgb])
        self._update_presets()

    @staticmethod
    def _label(stack: ChannelStack) -> str:
        first = stack.layers[0].name
        return first if len(stack.layers) == 1 else f"{first} … ({len(stack.channels)} channels)"

    def selected(self) -> ChannelStack | str | None:
        """The chosen image: a channel stack, the name of an RGB layer, or None."""
        index = self.image_box.currentIndex()
        if 0 <= index < len(self._stacks):
            return self._stacks[index]
        rgb = index - len(self._stacks)
        return self._rgb[rgb] if 0 <= rgb < len(self._rgb) else None

    def selected_kind(self) -> str | None:
        """The preset input kind of the chosen image (``microscopy``, ``hyperspectral``, ``he``), or None."""
        chosen = self.selected()
        if chosen is None:
            return None
        return input_kind(chosen.channels if isinstance(chosen, ChannelStack) else None)

    def _update_presets(self, *_: Any) -> None:
        """Offer only the presets suited to the chosen image (its default first) and the matching action."""
        kind = self.selected_kind()
        fill_combo(self.preset_box, presets_for(kind) if kind else [])
        chosen = self.selected()
        count = f", {len(chosen.channels)} channels" if isinstance(chosen, ChannelStack) else ""
        self.kind_label.setText(_KIND_LABELS.get(kind, "H&E (RGB in, markers out)") + count if kind else "no image")
        self._update_buttons(idle=self.worker is None)
        self._update_note()

    def _update_buttons(self, idle: bool) -> None:
        kind = self.selected_kind()
        self.embed_button.setEnabled(idle and kind in ("microscopy", "hyperspectral"))
        self.predict_button.setEnabled(idle and kind == "he")

    def _update_weights(self, source: str) -> None:
        """The "Weights" row: pretrained (with its model card) or UNTRAINED, in a colour that stands out."""
        weights = preset_weights(source) if source else None
        if not source:
            text, colour = "", None
        elif is_model_file(source):
            text, colour = f"from the file {source}", None
        elif weights is not None:
            text, colour = f"pretrained (model card: {weights.with_suffix('.md').name})", "#4caf50"
        else:
            text, colour = "UNTRAINED: random weights, no learned meaning", "#ff9800"
        self.weights_label.setText(text)
        self.weights_label.setStyleSheet(f"color: {colour}; font-weight: bold;" if colour else "")

    def _use_trained_tile(self, *_: Any) -> None:
        """A pretrained preset runs on the tile size it was trained at (a quarter of it overlapping)."""
        source = self.model_source()
        if not source or preset_weights(source) is None:
            return
        size = trained_tile_size(resolve_model(source))
        if size:
            self.tile_box.setValue(size)
            self.overlap_box.setValue(size // 4)

    def _update_note(self, *_: Any) -> None:
        chosen, source = self.selected(), self.model_source()
        self._update_weights(source)
        if chosen is None or not source:
            self.note_label.setText("Open an image: the presets offered suit its kind.")
            return
        channels = chosen.channels if isinstance(chosen, ChannelStack) else None
        note = model_note(source, channels)
        self.note_label.setText(note if channels is None else f"{note}. {PCA_NOTE}".lstrip(". "))

    def model_source(self) -> str:
        """The saved-model path when one is given, else the chosen preset."""
        return self.path_edit.text().strip() or self.preset_box.currentText()

    # ------------------------------------------------------------------ jobs
    def _embedding_job(self) -> Generator[Progress, None, EmbeddingResult]:
        stack = self.selected()
        if not isinstance(stack, ChannelStack):
            raise ValueError("Choose a multichannel image first.")
        self._job_input = stack
        source = self.model_source()
        model = resolve_model(source, stack.channels)
        data = stack.layers[0].data
        levels = list(data) if stack.layers[0].multiscale else [data]
        image = levels[0] if stack.band_axis else _stack_planes(stack)
        preview = _preview(levels) if stack.band_axis else _stack_planes(stack, preview=True)
        return (
            yield from compute_embeddings(
                model, source, image, stack.channels, preview,
                tile_size=self.tile_box.value(), overlap=self.overlap_box.value(),
            )
        )  # fmt: skip

    def _prediction_job(self) -> Generator[Progress, None, SlidePrediction]:
        name = self.selected()
        if not isinstance(name, str) or name not in self.viewer.layers:
            raise ValueError("Choose an RGB H&E image first.")
        self._job_input = name
        layer = self.viewer.layers[name]
        tile, overlap = self.tile_box.value(), self.overlap_box.value()
        return (yield from predict_layer(layer, self.model_source(), tile=tile, overlap=min(overlap, tile - 1)))

    def compute_embeddings(self, *, blocking: bool = False) -> Any:
        """Embed the chosen image tile by tile and add the PCA colour map (in a worker unless ``blocking``)."""
        return self._start(self._embedding_job, self._on_embedding, blocking)

    def predict_channels(self, *, blocking: bool = False) -> Any:
        """Predict multiplex channels and cells from the chosen H&E layer (the predict-mif pipeline) as layers."""
        return self._start(self._prediction_job, self._on_prediction, blocking)

    def _run_buttons(self) -> list[QPushButton]:
        return [self.embed_button, self.predict_button]

    def _set_running(self, running: bool) -> None:
        super()._set_running(running)
        if not running:
            self._update_buttons(idle=True)

    # ------------------------------------------------------------------ results
    def _source_spatial(self, layer: Any) -> dict[str, Any]:
        return {"scale": tuple(layer.scale[-2:]), "units": tuple(str(u) for u in layer.units[-2:])}

    def _replace(self, data: Any, kwargs: dict[str, Any], kind: str) -> Any:
        if kwargs["name"] in self.viewer.layers:
            self.viewer.layers.remove(kwargs["name"])
        return getattr(self.viewer, f"add_{kind}")(data, **kwargs)

    def _on_embedding(self, result: EmbeddingResult) -> None:
        self.last_result = result
        self._replace(*embedding_layer(result, **self._source_spatial(self._job_input.layers[0])))
        note = f" ({result.note})" if result.note else ""
        ratio = ", ".join(f"{v:.2f}" for v in result.explained)
        self.status.setText(f"embeddings of {result.model_name}: PCA explained variance {ratio}{note}. {PCA_NOTE}")

    def _on_prediction(self, prediction: SlidePrediction) -> None:
        self.last_result = prediction
        for data, kwargs, kind in slide_layers(prediction):
            names = kwargs["name"] if isinstance(kwargs["name"], list) else [kwargs["name"]]
            for name in (n for n in names if n in self.viewer.layers):  # a re-run replaces its layers
                self.viewer.layers.remove(name)
            getattr(self.viewer, f"add_{kind}")(data, **kwargs)
        result = prediction.result
        self.status.setText(
            f"{len(result.markers)} markers and {result.cells} cells predicted by {prediction.model_name} "
            f"(table: {result.cells_csv})"
        )


def _stack_planes(stack: ChannelStack, *, preview: bool = False) -> Any:
    """``(C, H, W)`` dask view of a layer-per-channel stack (its coarsest level when ``preview``)."""
    import dask.array as da

    def level(layer: Any) -> Any:
        if not layer.multiscale:
            return layer.data
        return layer.data[-1] if preview else layer.data[0]

    planes = da.stack([da.asarray(level(layer)) for layer in stack.layers])
    return _preview([planes]) if preview else planes
