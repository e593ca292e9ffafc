"""Errors on the command line: one line naming the file or option and the problem, exit code 1, no traceback."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import click

from hyperplex.common.errors import HyperplexError

__all__ = ["INTERRUPTED", "click_errors", "option_names", "os_error_message"]

#: Exit code after Ctrl-C (128 + SIGINT).
INTERRUPTED = 130
_FIELD = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)`")


def os_error_message(err: OSError) -> str:
    """``<file>: <reason>`` for an operating-system error (the file named where the error knows it)."""
    reason = err.strerror or str(err) or type(err).__name__
    return f"{err.filename}: {reason}." if err.filename else f"{reason}."


def option_names(command: click.Command, ctx: click.Context | None = None) -> dict[str, str]:
    """Parameter name -> its long option (``window`` -> ``--window``) over ``command`` and its subcommands."""
    ctx = ctx or click.Context(command)
    names: dict[str, str] = {}
    for param in command.params:
        long = [o for o in param.opts if o.startswith("--")]
        if param.name and long:
            names.setdefault(param.name, long[0])
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None:
                for key, opt in option_names(sub, click.Context(sub, parent=ctx)).items():
                    names.setdefault(key, opt)
    return names


def _as_options(message: str) -> str:
    """Name options as the user typed them: a library message's `` `window` `` becomes ``--window``."""
    ctx = click.get_current_context(silent=True)
    if ctx is None or not _FIELD.search(message):
        return message
    names = option_names(ctx.find_root().command)
    return _FIELD.sub(lambda m: names.get(m.group(1), m.group(0)), message)


@contextlib.contextmanager
def click_errors() -> Iterator[None]:
    """Report hyperplex errors (bad options, unreadable inputs) and OS errors as click errors.

    click prints ``Error: <message>`` on one line and exits with code 1. Parameters a library message
    names as `` `field` `` appear as the command line's option (``--field``). Ctrl-C (SIGINT) ends with
    one line and exit code 130, the shell's convention, without a traceback.
    """
    try:
        yield
    except HyperplexError as err:
        raise click.ClickException(_as_options(str(err).strip().splitlines()[0] if str(err).strip() else
                                               type(err).__name__)) from err  # fmt: skip
    except OSError as err:
        raise click.ClickException(os_error_message(err)) from err
    except KeyboardInterrupt:
        click.echo("Interrupted (outputs are written atomically: no partial file is left).", err=True)
        raise click.exceptions.Exit(INTERRUPTED) from None
