"""Models dock widget: preset or saved model; tiled embeddings as a PCA colour map; H&E -> multiplex channels.

torch and the model zoo are imported when the dock is opened (to list presets) and when a job runs,
never at napari start-up. Jobs run in a worker thread with progress and cancel.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

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

if TYPE_CHECKING:
    import napari

__all__ = ["ModelsWidget"]

Progress = tuple[float, str]


def _spin(low: int, high: int, value: int, step: int) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setValue(value)
    return box


class ModelsWidget(QWidget):
    """Run hyperplex models on layers: embeddings (PCA colour map) and H&E -> multiplex prediction.

    Args:
        napari_viewer: The viewer (injected by napari).
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.worker: Any = None
        self.last_result: EmbeddingResult | PredictionResult | None = None
        self._stacks: list[ChannelStack] = []
        self._build_ui()
        self.viewer.layers.events.inserted.connect(self.refresh)
        self.viewer.layers.events.removed.connect(self.refresh)
        self.refresh()

    # ------------------------------------------------------------------ UI
    def _build_ui(self) -> None:
        self.preset_box = QComboBox()
        self.preset_box.addItems(list_presets())
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("or a saved model (.safetensors)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.image_box, self.he_box = QComboBox(), QComboBox()
        self.tile_box, self.overlap_box = _spin(16, 4096, 128, 16), _spin(0, 1024, 16, 8)
        self.embed_button = QPushButton("Compute embeddings")
        self.embed_button.clicked.connect(lambda: self.compute_embeddings())
        self.predict_button = QPushButton("Predict channels from H&&E")
        self.predict_button.clicked.connect(lambda: self.predict_channels())
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.setLayout(self._layout(browse))

    def _layout(self, browse: QPushButton) -> QVBoxLayout:
        path_row = QHBoxLayout()
        path_row.addWidget(self.path_edit)
        path_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Preset", self.preset_box)
        form.addRow("Model file", path_row)
        form.addRow("Tile / overlap (px)", self._pair(self.tile_box, self.overlap_box))
        form.addRow("Multichannel image", self.image_box)
        form.addRow("H&&E image", self.he_box)
        layout = QVBoxLayout()
        layout.addLayout(form)
        for widget in (self.embed_button, self.predict_button, self.cancel_button, self.progress, self.status):
            layout.addWidget(widget)
        return layout

    @staticmethod
    def _pair(a: QWidget, b: QWidget) -> QHBoxLayout:
        row = QHBoxLayout()
        row.addWidget(a)
        row.addWidget(b)
        return row

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Saved hyperplex model", "", "Models (*.safetensors)")
        if path:
            self.path_edit.setText(path)

    def refresh(self, *_: Any) -> None:
        """Re-list multichannel stacks and H&E candidates (RGB layers)."""
        self._stacks = [s for s in find_stacks(self.viewer.layers) if not s.layers[0].name.startswith("embeddings")]
        self._fill(self.image_box, [self._label(s) for s in self._stacks])
        rgb = [layer.name for layer in self.viewer.layers if getattr(layer, "rgb", False)]
        self._fill(self.he_box, [n for n in rgb if not n.startswith("embeddings")])

    @staticmethod
    def _fill(box: QComboBox, items: list[str]) -> None:
        current = box.currentText()
        box.clear()
        box.addItems(items)
        if current in items:
            box.setCurrentText(current)

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

    def _start(self, make_job: Callable[[], Generator], on_result: Callable[[Any], None], blocking: bool) -> Any:
        if blocking:
            job = make_job()
            try:
                while True:
                    self._on_progress(next(job))
            except StopIteration as stop:
                on_result(stop.value)
                return stop.value
        from napari.qt.threading import create_worker

        def steps() -> Generator:
            return (yield from make_job())

        self.worker = create_worker(steps)
        self.worker.yielded.connect(self._on_progress)
        self.worker.returned.connect(on_result)
        self.worker.errored.connect(lambda err: self.status.setText(f"error: {err}"))
        self.worker.finished.connect(self._on_finished)
        self._set_running(True)
        self.worker.start()
        return self.worker

    def cancel(self) -> None:
        """Stop the running job after the current tile."""
        if self.worker is not None:
            self.worker.quit()
            self.status.setText("cancelling…")

    def _set_running(self, running: bool) -> None:
        for button in (self.embed_button, self.predict_button):
            button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def _on_progress(self, update: Progress) -> None:
        fraction, stage = update
        self.progress.setValue(round(100 * fraction))
        self.status.setText(stage)

    def _on_finished(self) -> None:
        self._set_running(False)
        if self.worker is not None and self.worker.abort_requested:
            self.status.setText("cancelled")
            self.progress.setValue(0)
        self.worker = None

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
