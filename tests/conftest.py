"""Shared fixtures: small synthetic EMIT scenes written once per session."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def emit_small(tmp_path_factory: pytest.TempPathFactory):
    """A 96 x 80 synthetic EMIT scene with hazards and a rotated GLT, in memory and on disk."""
    from hyperplex.geo.synth import emit_scene, write_emit_scene

    scene = emit_scene(lines=96, samples=80, plumes=2, seed=11, fill_columns=1, saturated=1, flares=1,
                       water=1, lookalikes=1, glt_rotation=30.0)  # fmt: skip
    paths = write_emit_scene(scene, tmp_path_factory.mktemp("emit_small"))
    return scene, paths


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]
