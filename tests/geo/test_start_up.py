"""What the methane commands import: help imports no heavy library; a detection run no notebook stack."""

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


def _top_level_modules(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_detect_help_imports_no_heavy_library():
    loaded = _top_level_modules(_HELP)
    heavy = {"torch", "numba", "xarray", "pandas", "rasterio", "h5py", "scipy", "dask", "skimage"}
    assert not loaded & heavy, f"`hyperplex methane detect --help` imported {sorted(loaded & heavy)}"


def test_detection_pipeline_imports_no_xarray():
    """The pipeline reads granules with h5py and writes with rasterio: xarray (and pandas) only for xarray input."""
    loaded = _top_level_modules(_RUN_PATH)
    assert "torch" in loaded  # a real check: the pipeline modules did import their dependencies
    assert not loaded & {"xarray", "pandas"}, f"the detection pipeline imported {sorted(loaded & {'xarray', 'pandas'})}"
