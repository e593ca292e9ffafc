"""A calibrated plume probability: a small logistic model over a candidate's vetting features.

The model is fitted on the *tuning* scene family only (``benchmarks/fit_vetting.py``) and stored as a
small JSON file shipped with the package (``geo/detect/vetting_model.json``): per detection method the
feature means and scales, coefficients and intercept, plus a pooled model for methods registered
later. ``P(plume | features) = 1 / (1 + exp(-(b + w . z)))`` with ``z`` the standardised features of
:func:`feature_vector`. The fit is ridge-penalised iteratively reweighted least squares (Newton).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hyperplex.common.atomic import atomic_path
from hyperplex.common.errors import FileFormatError, InvalidParameterError

__all__ = [
    "FEATURES",
    "MODEL_PATH",
    "LogisticModel",
    "feature_vector",
    "load_models",
    "plume_probability",
    "save_models",
]

#: Candidate features the model reads, in order (transforms in :func:`feature_vector`).
FEATURES = (
    "snr",
    "peak_snr",
    "spectral_score",
    "masked_edge_fraction",
    "log10_pixels",
    "log_elongation",
    "abs_albedo_contrast",
)
#: The shipped parameter file.
MODEL_PATH = Path(__file__).with_name("vetting_model.json")


def feature_vector(candidate: dict[str, Any]) -> np.ndarray:
    """The model's inputs from a candidate's attributes (``snr``, ``peak_snr``, ``pixels``, ...)."""
    return np.array(
        [
            np.clip(candidate["snr"], -5.0, 30.0),
            np.clip(candidate["peak_snr"], 0.0, 60.0),
            candidate["spectral_score"],
            candidate["masked_edge_fraction"],
            np.log10(max(candidate["pixels"], 1)),
            np.log(max(candidate["elongation"], 1.0)),
            abs(candidate["albedo_contrast"]),
        ],
        dtype=np.float64,
    )


@dataclass(frozen=True)
class LogisticModel:
    """Standardised logistic regression: ``P = sigmoid(intercept + coef . (x - mean) / scale)``."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float

    def probability(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for feature rows ``x`` (N, F) or one row (F,)."""
        z = (np.asarray(x, np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)
        return 1.0 / (1.0 + np.exp(-(self.intercept + z @ np.asarray(self.coef))))

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, *, ridge: float = 1.0, iterations: int = 50) -> LogisticModel:
        """Fit by Newton's method with an L2 penalty ``ridge`` on the coefficients (not the intercept).

        Raises:
            InvalidParameterError: If ``y`` holds only one class or shapes disagree.
        """
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        if x.ndim != 2 or x.shape[0] != y.size or len(np.unique(y)) != 2:
            raise InvalidParameterError("LogisticModel.fit needs x (N, F) and y (N,) with both classes present.")
        mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
        a = np.column_stack([np.ones(len(x)), (x - mean) / scale])
        w = np.zeros(a.shape[1])
        penalty = ridge * np.eye(a.shape[1])
        penalty[0, 0] = 0.0
        for _ in range(iterations):
            p = 1.0 / (1.0 + np.exp(-(a @ w)))
            grad = a.T @ (p - y) + penalty @ w
            hess = (a * (p * (1 - p))[:, None]).T @ a + penalty
            step = np.linalg.solve(hess, grad)
            w -= step
            if np.abs(step).max() < 1e-8:
                break
        return cls(tuple(mean), tuple(scale), tuple(w[1:]), float(w[0]))

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"mean": list(self.mean), "scale": list(self.scale), "coef": list(self.coef),
                "intercept": self.intercept}  # fmt: skip


def save_models(path: Path, models: dict[str, LogisticModel], meta: dict[str, Any]) -> Path:
    """Write the per-method models (key ``"*"``: the pooled model) and provenance to ``path``."""
    payload = {"features": list(FEATURES), **meta, "models": {k: m.to_dict() for k, m in models.items()}}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=1) + "\n")
    return path


@functools.lru_cache(maxsize=4)
def load_models(path: Path = MODEL_PATH) -> dict[str, LogisticModel]:
    """The models of a parameter file, by method (``"*"``: pooled).

    Raises:
        FileFormatError: If the file's feature list differs from :data:`FEATURES`.
    """
    payload = json.loads(Path(path).read_text())
    if tuple(payload.get("features", ())) != FEATURES:
        raise FileFormatError(f"{path}: features {payload.get('features')} differ from {FEATURES}; refit it.")
    return {k: LogisticModel(tuple(v["mean"]), tuple(v["scale"]), tuple(v["coef"]), float(v["intercept"]))
            for k, v in payload["models"].items()}  # fmt: skip


def plume_probability(candidate: dict[str, Any], method: str, path: Path = MODEL_PATH) -> float:
    """Calibrated probability that a candidate is a methane plume (0 for stripe-like candidates)."""
    if candidate.get("stripe_like"):
        return 0.0
    models = load_models(path)
    model = models.get(method, models["*"])
    return float(model.probability(feature_vector(candidate)))
