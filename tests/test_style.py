"""House rules that a reviewer should not have to check by eye: short functions, explicit public APIs,
private names kept inside their package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("common", "geo", "bio", "plugins")
MAX_FUNCTION_LINES = 60


def _sources() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py"))


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def function_length(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function from its ``def`` to its last line, not counting the docstring."""
    lines = node.end_lineno - node.lineno + 1
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        lines -= first.end_lineno - first.lineno + 1
    return lines


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return ".".join(("hyperplex", *parts))


def _package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def test_no_function_is_longer_than_the_limit():
    long = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({function_length(node)} lines)"
        for path in _sources()
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and function_length(node) > MAX_FUNCTION_LINES
    ]
    assert not long, "\n".join(long)


def test_function_length_counts_code_not_docstring(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(3))
    node = ast.parse(f'def f():\n    """Doc\n\n    more.\n    """\n{body}\n').body[0]
    assert function_length(node) == 4


def _exports(path: Path) -> bool:
    for node in _tree(path).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            return True
    return False


def test_every_package_declares_its_public_api():
    missing = [str(p.relative_to(ROOT)) for p in _sources() if p.name == "__init__.py" and not _exports(p)]
    assert not missing, f"packages without __all__: {missing}"


def _private_imports(path: Path) -> list[str]:
    """``from hyperplex.x.y import _name`` where the importer is not inside package ``hyperplex.x``."""
    own = _package_of(_module_name(path), path)
    bad = []
    for node in ast.walk(_tree(path)):
        if not (isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("hyperplex.")):
            continue
        source_package = node.module.rpartition(".")[0]
        for alias in node.names:
            private = alias.name.startswith("_") and not alias.name.startswith("__")
            if private and not (own == source_package or own.startswith(source_package + ".")):
                bad.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {alias.name} from {node.module}")
    return bad


@pytest.mark.parametrize("folder", FOLDERS)
def test_private_names_stay_inside_their_package(folder):
    bad = [line for path in _sources() if path.parts[len(ROOT.parts)] == folder for line in _private_imports(path)]
    assert not bad, "\n".join(bad)
