"""The hand-written `packages` list matches the folders, and a built wheel holds every module."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from hyperplex.common._version import __version__

ROOT = Path(__file__).resolve().parents[1]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _packages_on_disk() -> set[str]:
    found = set()
    for name, folder in CONFIG["package-dir"].items():
        for root, _, files in os.walk(ROOT / folder):
            if "__init__.py" in files and "__pycache__" not in root:
                rel = os.path.relpath(root, ROOT / folder)
                found.add(name if rel == "." else name + "." + rel.replace(os.sep, "."))
    return found


def test_every_package_folder_is_listed():
    missing = _packages_on_disk() - set(CONFIG["packages"])
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"


def test_every_listed_package_exists():
    extra = set(CONFIG["packages"]) - _packages_on_disk()
    assert not extra, f"listed in pyproject.toml but no folder with __init__.py: {sorted(extra)}"


def test_package_dir_maps_the_four_folders():
    assert CONFIG["package-dir"] == {
        "hyperplex.common": "common", "hyperplex.geo": "geo", "hyperplex.bio": "bio", "hyperplex.plugins": "plugins",
    }  # fmt: skip


def _source_files() -> list[Path]:
    return [p for folder in ("common", "geo", "bio", "plugins") for p in (ROOT / folder).rglob("*.py")]


def test_no_bare_folder_imports():
    bare = {"common", "geo", "bio", "plugins"}
    offenders = []
    for path in _source_files() + list((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path}: {n}" for n in names if n.split(".")[0] in bare]
    assert not offenders, offenders


def test_wheel_holds_every_module_and_data_file(tmp_path):
    src = tmp_path / "src"  # a clean copy: no stale build/ directory can leak files into the wheel
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        src.mkdir(exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    for folder in CONFIG["package-dir"].values():
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(src)], check=True)  # fmt: skip
    wheel = next(tmp_path.glob("hyperplex-*.whl"))
    assert wheel.name.startswith(f"hyperplex-{__version__}-"), "the wheel's version is not common/_version.py's"
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for name, folder in CONFIG["package-dir"].items():
        base = ROOT / folder
        for p in base.rglob("*"):
            if p.suffix in (".py", ".yaml", ".json") or p.name == "py.typed":
                if "__pycache__" not in p.parts:
                    expected.add(name.replace(".", "/") + "/" + p.relative_to(base).as_posix())
    missing = expected - names
    assert not missing, f"missing from the wheel: {sorted(missing)[:20]}"
