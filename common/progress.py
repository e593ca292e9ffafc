"""Progress bars that honour a process-wide quiet switch (the CLI's ``--quiet``)."""

from __future__ import annotations

import contextlib
import contextvars
import os
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

from tqdm import TqdmExperimentalWarning

with warnings.catch_warnings():  # what ``tqdm.auto`` does, without its asyncio import (30 ms of every command)
    warnings.simplefilter("ignore", category=TqdmExperimentalWarning)
    from tqdm.autonotebook import tqdm

__all__ = ["is_quiet", "progress", "quiet"]

_QUIET: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "hyperplex_quiet", default=os.environ.get("HYPERPLEX_QUIET", "") not in ("", "0")
)


def is_quiet() -> bool:
    """Return True when progress output is switched off."""
    return _QUIET.get()


@contextlib.contextmanager
def quiet(enabled: bool = True) -> Iterator[None]:
    """Switch progress bars off (or on) inside the block.

    Args:
        enabled: True to silence progress bars.
    """
    token = _QUIET.set(enabled)
    try:
        yield
    finally:
        _QUIET.reset(token)


def progress(iterable: Iterable[Any] | None = None, **kwargs: Any) -> tqdm:
    """Wrap ``iterable`` in a tqdm bar, silenced when :func:`is_quiet` is True.

    Args:
        iterable: Items to iterate over; None for a manually updated bar.
        **kwargs: Passed to tqdm (``total``, ``desc``, ``unit``, ...).

    Returns:
        The tqdm instance.
    """
    kwargs.setdefault("disable", is_quiet())
    kwargs.setdefault("leave", False)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)
