"""The H&E -> multiplex pipeline the napari Models widget runs (``predict_mif_steps``), against the library.

The widget no longer has its own predictor: it runs :func:`hyperplex.bio.predict_mif.predict_mif_steps`
(tiles streamed to a work folder, then cells) in a worker thread, and shows its progress steps. These tests
hold that pipeline to the library's one-call tiled inference, :func:`hyperplex.common.models.predict_markers`.
"""

from __future__ import annotations

import numpy as np
import pytest


def _run(steps):
    """Drive the generator with the library's driver; return its result and the ``(done, total)`` steps."""
    from hyperplex.common.models.inference import run_steps

    progress = []
    return run_steps(steps, lambda done, total: progress.append((done, total))), progress


def test_slide_prediction_equals_the_library_tiled_inference(tmp_path):
    torch = pytest.importorskip("torch")
    from hyperplex.bio.mif_pairs import intensity
    from hyperplex.bio.open import open_image
    from hyperplex.bio.predict_mif import predict_mif_steps
    from hyperplex.common.models import create_model, predict_markers

    torch.manual_seed(0)
    model = create_model("miphei_test").eval()
    rgb = np.random.default_rng(0).integers(0, 256, size=(3, 70, 90), dtype=np.uint8)
    result, progress = _run(predict_mif_steps(rgb, tmp_path / "p.ome.zarr", model=model, tile=32, overlap=8))
    reference, channels = predict_markers(model, rgb, 32, 8)
    stored = np.asarray(open_image(result.zarr).levels[0]).astype(np.float64)
    assert stored.shape == reference.shape and result.markers.names == channels.names
    expected = np.rint(intensity(reference) * 255)
    # the same tiles and tapered blend (uint8 rounding: +-1); at the slide's edge the two pad differently
    np.testing.assert_allclose(stored[:, 2:-2, 2:-2], expected[:, 2:-2, 2:-2], atol=1)
    assert np.abs(stored - expected).mean() < 0.1
    assert result.markers.names[0] == "Hoechst"
    done = [d for d, _ in progress]
    assert done == sorted(done) and progress[-1][0] == progress[-1][1] == progress[0][1]


def test_a_channels_last_array_is_refused_with_the_expected_layout(tmp_path):
    pytest.importorskip("torch")
    from hyperplex.bio.predict_mif import predict_mif_steps
    from hyperplex.common.errors import ChannelMismatchError
    from hyperplex.common.models import create_model

    rgb = np.zeros((70, 90, 3), np.uint8)
    with pytest.raises(ChannelMismatchError, match=r"\(3, H, W\)"):
        _run(predict_mif_steps(rgb, tmp_path / "p.ome.zarr", model=create_model("miphei_test").eval()))
