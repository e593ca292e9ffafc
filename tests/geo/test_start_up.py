"""What the methane commands import: help no heavy library; a detection run no notebook stack, and no torch on
the compiled CPU path (a CPU-only torch is installed here, so the path can tell without importing it)."""

from __future__ import annotations

import json
import subprocess
import sys

_HELP = """
import json, sys
from hyperplex.geo.cli import methane
try:
    methane.main(["detect", "--help"], prog_name="hyperplex methane")
except SystemExit:
    pass
print(json.dumps(sorted(m.split(".")[0] for m in sys.modules)))
"""

_RUN_PATH = """
import json, sys
import hyperplex.geo.detect.scene, hyperplex.geo.detect.source, hyperplex.geo.methane.mag1c_filter.api
print(json.dumps(sorted(m.split(".")[0] for m in sys.modules)))
"""


#: A detection run (the CLI, method mag1c) on a granule; prints the top-level modules loaded at its end.
_DETECT = """
import json, sys
from hyperplex.geo.cli import methane
methane.main(["detect", sys.argv[1], "--out", sys.argv[2], "-q"], prog_name="hyperplex methane",
             standalone_mode=False)
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} | {m for m in sys.modules if m == "scipy.ndimage"})))
"""

#: ``mag1c()`` on an in-memory cube (column groups, CPU), then the torch engine on the same cube.
_MAG1C = """
import json, sys
import numpy as np
from hyperplex.geo.methane import mag1c
from hyperplex.geo.synth import emit_scene
scene = emit_scene(lines=64, samples=24, plumes=1, seed=3)
cube, wl, fw = scene.radiance, scene.wavelengths, scene.fwhm
compiled = mag1c(cube, wl, fw, channel_axis=2, device="cpu")
loaded_before = "torch" in sys.modules
reference = mag1c(cube, wl, fw, channel_axis=2, device="cpu", engine="torch")
difference = float(np.nanmax(np.abs(compiled - reference)))
print(json.dumps({"torch_before": loaded_before, "torch_after": "torch" in sys.modules, "max_abs": difference,
                  "scale": float(np.nanmax(np.abs(reference)))}))
"""


def _top_level_modules(code: str, *args: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_detect_help_imports_no_heavy_library():
    loaded = _top_level_modules(_HELP)
    heavy = {"torch", "numba", "xarray", "pandas", "rasterio", "h5py", "scipy", "dask", "skimage"}
    assert not loaded & heavy, f"`hyperplex methane detect --help` imported {sorted(loaded & heavy)}"


def test_detection_pipeline_imports_no_xarray():
    """The pipeline reads granules with h5py and writes with rasterio: xarray (and pandas) only for xarray input."""
    loaded = _top_level_modules(_RUN_PATH)
    assert "scipy" in loaded  # a real check: the pipeline modules did import their dependencies
    assert not loaded & {"xarray", "pandas"}, f"the detection pipeline imported {sorted(loaded & {'xarray', 'pandas'})}"


def test_detection_run_imports_no_torch(emit_small, tmp_path):
    """The whole mag1c detection (read, compiled filter, plume-free statistics, products) runs without torch
    (and without scipy.ndimage or scikit-image: ``geo/image_ops.py``)."""
    _, paths = emit_small
    loaded = _top_level_modules(_DETECT, str(paths["radiance"]), str(tmp_path / "out"))
    assert list((tmp_path / "out").glob("*_ch4enh.tif")), "the run wrote no enhancement map"
    assert "numba" in loaded and "torch" not in loaded, "the compiled mag1c detection imported torch"
    assert not loaded & {"scipy.ndimage", "skimage"}, "the detection imported scipy.ndimage or scikit-image (0.3 s)"


def test_mag1c_compiled_path_without_torch_equals_torch_engine():
    """``mag1c()`` on the CPU imports no torch; the torch engine (which does) gives the same map."""
    out = subprocess.run([sys.executable, "-c", _MAG1C], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["torch_before"] is False and result["torch_after"] is True
    assert result["max_abs"] <= 1e-3 * result["scale"]
