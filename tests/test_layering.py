"""Dependencies point one way: common <- geo, bio <- plugins; only plugins imports napari or Qt."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def _modules_after_import(module: str) -> set[str]:
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("hyperplex.common", ("hyperplex.geo", "hyperplex.bio", "hyperplex.plugins", "napari", "qtpy", "torch")),
        ("hyperplex.geo", ("hyperplex.bio", "hyperplex.plugins", "napari", "qtpy", "PyQt5")),
        ("hyperplex.bio", ("hyperplex.geo", "hyperplex.plugins", "napari", "qtpy", "PyQt5")),
        ("hyperplex.common.cli", ("hyperplex.geo", "hyperplex.bio", "napari", "torch")),
    ],
)
def test_import_does_not_pull_in(module, forbidden):
    loaded = _modules_after_import(module)
    pulled = sorted(m for m in forbidden if m in loaded)
    assert not pulled, f"importing {module} imported {pulled}"
