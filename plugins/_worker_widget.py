"""Shared dock-widget plumbing: viewer wiring, a generator job in a napari worker thread, small form helpers.

A job is a generator that yields ``(fraction, stage)`` progress updates and returns its result; a
:class:`WorkerWidget` runs it in a worker thread (or inline when ``blocking``) with a progress bar,
a status label and a cancel button.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any

from qtpy.QtWidgets import QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, QSpinBox, QWidget

from hyperplex.plugins._stacks import ChannelStack

if TYPE_CHECKING:
    import napari

__all__ = ["DockWidget", "Progress", "WorkerWidget", "fill_combo", "row", "spin_box"]

#: A job's progress update: fraction done in [0, 1] and the current stage.
Progress = tuple[float, str]


def spin_box(
    low: float, high: float, value: float, *, step: float | None = None, decimals: int | None = None
) -> QSpinBox | QDoubleSpinBox:
    """An integer spin box, or a floating-point one when ``decimals`` is given.

    Args:
        low: Smallest value.
        high: Largest value.
        value: Initial value.
        step: Single step (Qt's default when None).
        decimals: Decimals shown; None makes an integer ``QSpinBox``.

    Returns:
        The spin box.
    """
    box = QSpinBox() if decimals is None else QDoubleSpinBox()
    box.setRange(low, high)
    if decimals is not None:
        box.setDecimals(decimals)
    if step is not None:
        box.setSingleStep(step)
    box.setValue(value)
    return box


def row(*widgets: QWidget) -> QHBoxLayout:
    """The widgets side by side in a horizontal layout."""
    layout = QHBoxLayout()
    for widget in widgets:
        layout.addWidget(widget)
    return layout


def fill_combo(box: QComboBox, items: list[str]) -> None:
    """Replace a combo box's items, keeping the current choice when it is still listed."""
    current = box.currentText()
    box.clear()
    box.addItems(items)
    if current in items:
        box.setCurrentText(current)


class DockWidget(QWidget):
    """A dock widget tied to a viewer: builds its UI, then refreshes whenever layers are added or removed.

    Subclasses implement ``_build_ui`` and ``refresh``; ``_init_state`` sets attributes before the UI is built.

    Args:
        napari_viewer: The viewer (injected by napari).
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__()
        self.viewer = napari_viewer
        self._stacks: list[ChannelStack] = []
        self._init_state()
        self._build_ui()
        self.viewer.layers.events.inserted.connect(self.refresh)
        self.viewer.layers.events.removed.connect(self.refresh)
        self.refresh()

    def _init_state(self) -> None:
        """Set attributes the UI and ``refresh`` rely on (none by default)."""

    def _build_ui(self) -> None:
        raise NotImplementedError

    def refresh(self, *_: Any) -> None:
        """Re-read the viewer's layers."""
        raise NotImplementedError


class WorkerWidget(DockWidget):
    """A dock widget that runs generator jobs in a napari worker thread with progress, status and cancel.

    Subclasses lay out ``progress``, ``status`` and ``cancel_button`` and list their start buttons in
    ``_run_buttons`` (disabled while a job runs).
    """

    def _init_state(self) -> None:
        self.worker: Any = None
        self.last_result: Any = None
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.status = QLabel("")

    def _run_buttons(self) -> Sequence[QPushButton]:
        raise NotImplementedError

    def _start(
        self, make_job: Callable[[], Generator[Progress, None, Any]], on_result: Callable[[Any], None], blocking: bool
    ) -> Any:
        """Run ``make_job()`` here when ``blocking`` (returns its result), else in a worker (returns the worker)."""
        if blocking:
            return self._run_here(make_job(), on_result)
        from napari.qt.threading import create_worker

        def steps() -> Generator[Progress, None, Any]:
            return (yield from make_job())

        self.worker = create_worker(steps)
        self.worker.yielded.connect(self._on_progress)
        self.worker.returned.connect(on_result)
        self.worker.errored.connect(self._on_error)
        self.worker.finished.connect(self._on_finished)
        self._set_running(True)
        self.worker.start()
        return self.worker

    def _run_here(self, job: Generator[Progress, None, Any], on_result: Callable[[Any], None]) -> Any:
        try:
            while True:
                self._on_progress(next(job))
        except StopIteration as stop:
            on_result(stop.value)
            return stop.value

    def cancel(self) -> None:
        """Ask the worker to stop at its next step."""
        if self.worker is not None:
            self.worker.quit()
            self.status.setText("cancelling…")

    def _set_running(self, running: bool) -> None:
        for button in self._run_buttons():
            button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def _on_progress(self, update: Progress) -> None:
        fraction, stage = update
        self.progress.setValue(round(100 * fraction))
        self.status.setText(stage)

    def _on_error(self, error: Exception) -> None:
        self.status.setText(f"error: {error}")

    def _on_finished(self) -> None:
        self._set_running(False)
        if self.worker is not None and self.worker.abort_requested:
            self.status.setText("cancelled")
            self.progress.setValue(0)
        self.worker = None
