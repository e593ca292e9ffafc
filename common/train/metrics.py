"""Metrics of a run: ``metrics.csv`` (long format: step, epoch, split, metric, value) and optional TensorBoard."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from hyperplex.common.errors import MissingDependencyError

__all__ = ["MetricsLog"]

_HEADER = ["step", "epoch", "split", "metric", "value"]


def _tensorboard(folder: Path, wanted: bool | None) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as err:
        if wanted:
            raise MissingDependencyError(
                "tensorboard=True needs the tensorboard package: pip install tensorboard."
            ) from err
        return None
    return SummaryWriter(str(folder / "tensorboard")) if wanted is not False else None


class MetricsLog:
    """Appends metric rows to ``<folder>/metrics.csv`` (and TensorBoard); inactive on ranks other than 0.

    Args:
        folder: Run folder.
        active: Write anything at all (True on rank 0).
        tensorboard: True: require TensorBoard; None: use it when installed; False: never.
        resume_step: When resuming, rows after this step (written after the last checkpoint) are dropped.
    """

    def __init__(self, folder: Path, active: bool, tensorboard: bool | None = None, resume_step: int | None = None):
        self.path = folder / "metrics.csv"
        self.active = active
        self.writer = _tensorboard(folder, tensorboard) if active else None
        if not active:
            return
        folder.mkdir(parents=True, exist_ok=True)
        rows = self.read(self.path) if resume_step is not None and self.path.exists() else []
        with self.path.open("w", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(_HEADER)
            out.writerows([r[k] for k in _HEADER] for r in rows if int(r["step"]) <= resume_step)  # type: ignore[operator]

    @staticmethod
    def read(path: Path) -> list[dict[str, str]]:
        """Rows of a ``metrics.csv`` as dicts of strings."""
        with Path(path).open(newline="") as handle:
            return list(csv.DictReader(handle))

    def write(self, step: int, epoch: int, split: str, values: dict[str, float]) -> None:
        """Append one row per metric."""
        if not self.active:
            return
        with self.path.open("a", newline="") as handle:
            out = csv.writer(handle)
            for name, value in values.items():
                out.writerow([step, epoch, split, name, f"{value:.6g}"])
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(f"{split}/{name}", value, step)

    def close(self) -> None:
        """Flush TensorBoard."""
        if self.writer is not None:
            self.writer.close()
