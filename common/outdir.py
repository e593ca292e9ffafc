"""The output folder of a command, checked before any computing: created if missing, then proven writable."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hyperplex.common.errors import InvalidParameterError

__all__ = ["writable_dir"]


def writable_dir(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """Create ``path`` (with parents) if needed and check that a file can be written in it.

    Args:
        path: The output folder.
        option: How the caller names it in messages (a CLI option or a parameter).

    Returns:
        The folder as a :class:`~pathlib.Path`.

    Raises:
        InvalidParameterError: If the folder cannot be created or written to, naming it and the reason.
    """
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".hyperplex-write-test-"):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise InvalidParameterError(
            f"{option} {out}: output folder is not writable ({reason}); choose another folder."
        ) from err
    return out
