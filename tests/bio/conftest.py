import numpy as np
import pytest

NAMES = ["DAPI", "CD3", "CD8", "PanCK"]


@pytest.fixture(scope="module")
def cube() -> np.ndarray:
    """A 4-channel uint16 image with odd sizes (exercises edge tiles and trimmed pyramid levels)."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:300, 0:260]
    smooth = (1000 + 800 * np.sin(yy / 17.0) * np.cos(xx / 23.0)).astype(np.float32)
    return (smooth[None] * np.arange(1, 5)[:, None, None] / 2 + rng.normal(0, 30, (4, 300, 260))).astype(np.uint16)
