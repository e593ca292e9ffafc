"""Errors on the command line: one line naming the file or option and the problem, exit code 1, no traceback."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click

from hyperplex.common.errors import HyperplexError

__all__ = ["click_errors", "os_error_message"]


def os_error_message(err: OSError) -> str:
    """``<file>: <reason>`` for an operating-system error (the file named where the error knows it)."""
    reason = err.strerror or str(err) or type(err).__name__
    return f"{err.filename}: {reason}." if err.filename else f"{reason}."


@contextlib.contextmanager
def click_errors() -> Iterator[None]:
    """Report hyperplex errors (bad options, unreadable inputs) and OS errors as click errors.

    click prints ``Error: <message>`` on one line and exits with code 1.
    """
    try:
        yield
    except HyperplexError as err:
        raise click.ClickException(str(err)) from err
    except OSError as err:
        raise click.ClickException(os_error_message(err)) from err
