"""napari on EMIT granules: the reader opens them lazily in small blocks; the Methane widget runs the CLI pipeline."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest

from hyperplex.geo.io.emit import emit_cube, open_emit
from hyperplex.plugins._formats import EMIT_BAND_CHUNK
from hyperplex.plugins._reader import get_reader


class Image(SimpleNamespace):
    """Stands in for a napari image layer (the stack logic is Qt-free and duck-typed on the class name)."""


def _emit_layer(path):
    [(data, kwargs, kind)] = get_reader(str(path))(str(path))
    return Image(name=kwargs["name"], data=data, metadata=kwargs["metadata"], multiscale=False,
                           scale=(1.0, 60.0, 60.0), units=("pixel", "meter", "meter"))  # fmt: skip


def _run(generator):
    steps = []
    try:
        while True:
            steps.append(next(generator))
    except StopIteration as stop:
        return stop.value, steps


def test_reader_gives_small_blocks_with_the_file_values(emit_small):
    scene, paths = emit_small
    layer = _emit_layer(paths["radiance"])
    assert layer.data.chunksize[0] == EMIT_BAND_CHUNK and layer.data.shape == (285, 96, 80)
    expected = np.where(scene.radiance[:, :, 200] == -9999, np.nan, scene.radiance[:, :, 200])
    np.testing.assert_array_equal(np.asarray(layer.data[200]), expected)
    cube = emit_cube(paths["radiance"], band_chunk=5, line_chunk=7)
    np.testing.assert_array_equal(cube.values, open_emit(paths["radiance"])["radiance"].values)
    assert cube["lat"].dims == ("downtrack", "crosstrack") and cube.attrs["data_variable"] == "radiance"


def test_methane_widget_on_a_file_runs_the_cli_pipeline(emit_small, monkeypatch):
    from hyperplex.geo.detect import DetectConfig, analyze, open_source
    from hyperplex.plugins import _methane_widget
    from hyperplex.plugins._stacks import find_stacks

    _, paths = emit_small
    [stack] = find_stacks([_emit_layer(paths["radiance"])])

    def never(*a, **k):
        raise AssertionError("the widget read the layer's cube instead of running the pipeline on the file")

    monkeypatch.setattr(_methane_widget, "analyze_cube", never)
    result, steps = _run(_methane_widget.compute_methane(stack, "mf", (2122.0, 2488.0), None))
    reference = analyze(open_source(paths["radiance"]), DetectConfig(method="mf"))
    np.testing.assert_array_equal(result.enhancement, reference.enhancement)
    np.testing.assert_array_equal(result.labels, reference.labels)
    assert result.method == "mf" and steps[0][0] < steps[-1][0] == 1.0


def test_methane_widget_on_an_in_memory_layer_reads_it_in_blocks(emit_small):
    from hyperplex.plugins._methane import analyze_cube
    from hyperplex.plugins._methane_widget import compute_methane
    from hyperplex.plugins._stacks import find_stacks

    scene, paths = emit_small
    layer = _emit_layer(paths["radiance"])
    layer.metadata["hyperplex"]["source"] = None  # e.g. a layer made in the session
    [stack] = find_stacks([layer])
    result, _ = _run(compute_methane(stack, "mf", (2122.0, 2488.0), 60.0))
    reference = analyze_cube("mf", np.asarray(layer.data), scene.wavelengths, scene.fwhm, pixel_size_m=60.0)
    np.testing.assert_allclose(result.enhancement, reference.enhancement, rtol=1e-5, atol=1e-3)


_NAPARI_RSS = textwrap.dedent(
    """
    import sys
    from types import SimpleNamespace
    from hyperplex.plugins._reader import get_reader
    from hyperplex.plugins._stacks import find_stacks
    from hyperplex.plugins._methane_widget import compute_methane

    def hwm():
        return next(int(l.split()[1]) // 1024 for l in open("/proc/self/status") if l.startswith("VmHWM"))

    [(data, kwargs, _)] = get_reader(sys.argv[1])(sys.argv[1])
    print(hwm())
    Image = type("Image", (SimpleNamespace,), {})
    layer = Image(name=kwargs["name"], data=data, metadata=kwargs["metadata"], multiscale=False)
    generator = compute_methane(find_stacks([layer])[0], "mag1c", (2122.0, 2488.0), None)
    for _ in generator:
        pass
    print(hwm())
    """
)


@pytest.mark.skipif("HYPERPLEX_FULL_EMIT" not in os.environ, reason="set HYPERPLEX_FULL_EMIT to a full-size granule")
def test_full_scene_in_napari_memory():
    """Issue 15.5: <= 1 GB to open a full scene, <= 2 GB through the Methane widget's computation."""
    run = subprocess.run([sys.executable, "-c", _NAPARI_RSS, os.environ["HYPERPLEX_FULL_EMIT"]], capture_output=True,
                         text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    opened, widget = (int(v) for v in run.stdout.split()[-2:])
    assert opened <= 1024 and widget <= 2048
