"""Package version: the one place it is written (``pyproject.toml`` reads it, ``[tool.setuptools.dynamic]``).

A literal rather than ``importlib.metadata.version("hyperplex")``: that lookup imports ``importlib.metadata``
(email, zipfile, csv) and scans ``sys.path`` for distributions, ~65 ms of every command's start on the
benchmark machine.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
