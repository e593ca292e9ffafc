"""Atomic file output: write to a temporary sibling, then rename into place."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path"]


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def _temporary_sibling(path: Path) -> Path:
    # keep the suffix: GDAL, matplotlib and zarr pick the format from it
    return path.with_name(f".{path.stem}.tmp-{uuid.uuid4().hex[:8]}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write to; on success it replaces ``path`` in one rename.

    A crash or exception inside the block removes the temporary file and leaves any existing
    ``path`` untouched, so readers never see a half-written file. Works for files and for
    directory stores such as Zarr.

    Args:
        path: Final destination.

    Yields:
        The temporary path, in the same directory as ``path`` (same file system).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(final)
    try:
        yield tmp
        if tmp.is_dir() and final.exists():
            _remove(final)  # os.replace cannot replace a non-empty directory
        os.replace(tmp, final)
    finally:
        _remove(tmp)
