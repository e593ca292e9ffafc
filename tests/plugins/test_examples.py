"""Smoke test of the napari example scripts (slow: each starts napari and runs models/filters)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytestmark = [pytest.mark.slow, pytest.mark.qt]


@pytest.mark.parametrize("script", ["napari_tissue_tour.py", "napari_emit_methane.py"])
def test_example_saves_a_non_black_screenshot(script, tmp_path):
    pytest.importorskip("napari")
    if not os.environ.get("DISPLAY") and shutil.which("xvfb-run") is None:
        pytest.skip("needs a display or xvfb-run")
    out = tmp_path / "shot.png"
    prefix = [] if os.environ.get("DISPLAY") else ["xvfb-run", "-a"]
    run = subprocess.run([*prefix, sys.executable, str(EXAMPLES / script), str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    from matplotlib.image import imread

    image = imread(out)
    assert image.shape[0] > 400 and image[..., :3].mean() > 0.05
    assert np.unique((image[..., :3] * 8).astype(int).reshape(-1, 3), axis=0).shape[0] > 20  # not flat
