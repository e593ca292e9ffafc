"""Shared fixtures for the plugin tests: Qt/Xvfb guard and small synthetic files."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from hyperplex.common.channels import ChannelSet

MARKERS = ("DAPI", "CD3", "CD20", "PanCK")


@pytest.fixture
def qt_viewer(request):
    """``make_napari_viewer`` when Qt and Xvfb are available; skips cleanly otherwise."""
    pytest.importorskip("qtpy")
    pytest.importorskip("napari")
    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed; Qt tests need a virtual display (pytest-xvfb).")
    return request.getfixturevalue("make_napari_viewer")


@pytest.fixture
def marker_image():
    """A (4, 96, 80) uint16 image whose channel i is bright in its own quadrant-ish band (known truth)."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 50, size=(4, 96, 80)).astype(np.uint16)
    for i in range(4):
        image[i, 20 * i : 20 * i + 15, 10:70] += 1000 * (i + 1)
    return image, ChannelSet.from_names(MARKERS)
