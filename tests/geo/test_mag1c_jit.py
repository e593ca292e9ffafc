"""How Mag1c's compiled kernels are cached: stamped by every source file they depend on, loaded cheaply."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hyperplex.geo.methane.mag1c_filter import compiled_engine

pytestmark = pytest.mark.skipif(not compiled_engine.available(), reason="numba is not installed")

_RUN = """
import json, sys
sys.path.insert(0, sys.argv[1])
from jitpkg.engine.kern import scaled
import numpy as np
value = float(scaled(np.arange(3.0)))
print(json.dumps({"value": value, "hits": sum(scaled.stats.cache_hits.values()),
                  "scipy_linalg": "scipy.linalg" in sys.modules}))
"""


def _package(root: Path, factor: float) -> None:
    """A package whose kernel (``jitpkg/engine/kern.py``) inlines a constant of another module."""
    engine = root / "jitpkg" / "engine"
    engine.mkdir(parents=True, exist_ok=True)
    (root / "jitpkg" / "__init__.py").write_text("")
    (engine / "__init__.py").write_text("")
    (root / "jitpkg" / "constants.py").write_text(f"FACTOR = {factor}\n")
    (engine / "kern.py").write_text(
        textwrap.dedent("""
        from jitpkg.constants import FACTOR
        from hyperplex.geo.methane.mag1c_filter.jit import kernel


        @kernel()
        def scaled(values):
            total = 0.0
            for i in range(values.size):
                total += values[i] * FACTOR
            return total
        """)
    )


def _run(root: Path) -> dict:
    import json

    out = subprocess.run([sys.executable, "-c", _RUN, str(root)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_cached_kernel_reloads_and_follows_its_dependencies(tmp_path):
    """A fresh process loads the kernel from the cache; editing a module it imports from recompiles it."""
    _package(tmp_path, 2.0)
    first = _run(tmp_path)
    assert first["value"] == 6.0 and first["hits"] == 0
    again = _run(tmp_path)
    assert again["value"] == 6.0 and again["hits"] == 1
    assert not again["scipy_linalg"]  # the cache load does not refresh numba's registries (which import it)
    _package(tmp_path, 3.0)  # numba's own cache would keep FACTOR = 2.0 (it checks only kern.py)
    edited = _run(tmp_path)
    assert edited["value"] == 9.0 and edited["hits"] == 0


def test_source_files_of_the_iterations_kernel():
    from hyperplex.geo.methane.mag1c_filter import compiled_iterations
    from hyperplex.geo.methane.mag1c_filter.jit import source_files

    names = {p.name for p in source_files(compiled_iterations.__name__)}
    # inlined helpers (cramer, first pass), constants (settings.EPSILON, linalg.FALLBACK_SHRINKAGE)
    assert {"compiled_iterations.py", "compiled_first_pass.py", "cramer.py", "settings.py", "linalg.py"} <= names
    assert all(p.suffix == ".py" for p in source_files(compiled_iterations.__name__))


_PRELOAD = """
import json, sys
sys.path.insert(0, sys.argv[1])
from jitpkg.engine.kern import scaled
from hyperplex.geo.methane.mag1c_filter.jit import preload
thread = preload(lambda: [scaled])
thread.join()
loaded = len(scaled.overloads)
import numpy as np
value = float(scaled(np.arange(3.0)))
print(json.dumps({"loaded": loaded, "value": value, "misses": sum(scaled.stats.cache_misses.values()),
                  "again": preload(lambda: [scaled]) is None}))
"""


def test_preload_loads_cached_kernels_and_never_compiles(tmp_path):
    """With an empty cache the preload loads nothing (the call compiles); with a warm one it loads the kernel."""
    import json

    _package(tmp_path, 2.0)

    def run() -> dict:
        out = subprocess.run(
            [sys.executable, "-c", _PRELOAD, str(tmp_path)], capture_output=True, text=True, check=True
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    cold = run()
    assert cold["loaded"] == 0 and cold["misses"] == 1 and cold["value"] == 6.0
    warm = run()
    assert warm["loaded"] == 1 and warm["misses"] == 0 and warm["value"] == 6.0
    assert warm["again"]  # once per process


def test_mag1c_kernels_load_without_scipy_linalg():
    """A fresh process's Mag1c (kernels cached) never imports numba's array math and scipy.linalg (~0.6 s)."""
    code = """
import sys, numpy as np
from hyperplex.geo.methane import mag1c
rng = np.random.default_rng(0)
cube = (10 + rng.standard_normal((24, 40, 12))).astype(np.float32)
mag1c(cube, np.linspace(2130.0, 2480.0, 24), np.full(24, 8.7))
print("scipy.linalg" in sys.modules, "numba.np.arraymath" in sys.modules)
"""
    for _ in range(2):  # the first run may compile (which imports both); the second loads from the cache
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
