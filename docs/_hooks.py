"""MkDocs hook: a ``hyperplex`` package folder for mkdocstrings' static analysis, from this checkout.

The package maps four top-level folders (``common``, ``geo``, ``bio``, ``plugins``) into the
``hyperplex`` namespace (setuptools ``package-dir``). Griffe finds packages by folder, so on import
(when mkdocs reads ``mkdocs.yml``, before any plugin runs) this builds ``build/docs-src/hyperplex/``
of symlinks to the four folders; ``mkdocs.yml`` lists ``build/docs-src`` in the handler's ``paths``.
"""

from __future__ import annotations

from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
_PACKAGE = _ROOT / "build" / "docs-src" / "hyperplex"
_PACKAGE.mkdir(parents=True, exist_ok=True)
for _folder in ("common", "geo", "bio", "plugins"):
    _link = _PACKAGE / _folder
    if not _link.is_symlink():
        _link.symlink_to(_ROOT / _folder, target_is_directory=True)
