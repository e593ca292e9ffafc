"""Dependencies point one way: common <- geo, bio <- plugins; only plugins imports napari or Qt.

Checked twice: statically, over every import statement of every module (including imports inside
functions, which run only on some paths), and at run time, by importing every module of a subpackage
in a fresh interpreter.
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUI = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "superqt", "vispy")
FORBIDDEN = {
    "common": ("hyperplex.geo", "hyperplex.bio", "hyperplex.plugins", *GUI),
    "geo": ("hyperplex.bio", "hyperplex.plugins", *GUI),
    "bio": ("hyperplex.geo", "hyperplex.plugins", *GUI),
}


def _imported_names(path: Path) -> list[tuple[int, str]]:
    """Every absolute module name an import statement of ``path`` names, with its line."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append((node.lineno, node.module))
    return names


def _breaks(name: str, forbidden: tuple[str, ...]) -> bool:
    return any(name == f or name.startswith(f + ".") for f in forbidden)


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_no_module_imports_against_the_dependency_rule(folder):
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line, name in _imported_names(path)
        if _breaks(name, FORBIDDEN[folder])
    ]
    assert not bad, "\n".join(bad)


def test_static_check_sees_imports_inside_functions(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    import napari\n    from hyperplex.bio import open_image\n")
    found = [name for _, name in _imported_names(probe)]
    assert _breaks(found[0], FORBIDDEN["geo"]) and _breaks(found[1], FORBIDDEN["geo"])


def _modules_after_import(modules: list[str]) -> set[str]:
    code = f"import importlib, json, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
    code += "print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _all_modules(package: str) -> list[str]:
    module = __import__(package, fromlist=["__path__"])
    walked = pkgutil.walk_packages(module.__path__, prefix=package + ".")
    return [package, *sorted(info.name for info in walked)]


@pytest.mark.parametrize("package", ["hyperplex.common", "hyperplex.geo", "hyperplex.bio"])
def test_every_module_imports_without_breaking_the_rule(package):
    loaded = _modules_after_import(_all_modules(package))
    folder = package.split(".")[1]
    pulled = sorted(m for m in loaded if _breaks(m, FORBIDDEN[folder]))
    assert not pulled, f"importing every module of {package} imported {pulled}"


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("hyperplex.common", ("torch",)),
        ("hyperplex.common.cli", ("hyperplex.geo", "hyperplex.bio", "torch")),
    ],
)
def test_light_entry_points_stay_light(module, forbidden):
    loaded = _modules_after_import([module])
    pulled = sorted(m for m in forbidden if m in loaded)
    assert not pulled, f"importing {module} imported {pulled}"


def test_library_code_does_not_import_the_command_line():
    """Only CLI modules (``cli.py``, ``__main__.py``, ``common/cli/``) import ``hyperplex.common.cli``."""
    bad = [
        f"{path.relative_to(ROOT)}:{line}"
        for folder in ("common", "geo", "bio", "plugins")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path.name not in ("cli.py", "__main__.py") and "cli" not in path.relative_to(ROOT).parts
        for line, name in _imported_names(path)
        if _breaks(name, ("hyperplex.common.cli",))
    ]
    assert not bad, "\n".join(bad)
