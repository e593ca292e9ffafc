"""The ``hyperplex`` command line.

The root group and the ``synth`` group live here; subpackages contribute commands through the
entry-point groups ``hyperplex.commands`` (top-level commands) and ``hyperplex.synth`` (``hyperplex
synth <kind>``), the way rasterio's ``rio`` collects its subcommands. That keeps the dependency
direction: ``hyperplex.common`` never imports ``hyperplex.geo`` or ``hyperplex.bio``.
"""

from __future__ import annotations

import atexit
import gc
from importlib.metadata import entry_points
from typing import Any

import click

from hyperplex.common._version import __version__
from hyperplex.common.cli.errors import click_errors

__all__ = ["main"]

# At interpreter exit, freeze the garbage collector: the objects a command made (arrays, numba, GDAL, scipy
# modules) are then left to the OS instead of being traced by the final collections, which took 0.4 s after
# a methane detection. Only cyclic garbage is affected; reference counting, atexit and weakref finalizers
# (temporary files) still run, and outputs are closed when written (atomic writes).
atexit.register(gc.freeze)


class EntryPointGroup(click.Group):
    """A click group whose extra subcommands come from an entry-point group, loaded on first use."""

    def __init__(self, *args: Any, entry_point_group: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.entry_point_group = entry_point_group
        self._loaded = False
        self._broken: dict[str, str] = {}

    def _load(self) -> None:
        """Add the entry-point commands; one that fails to import is recorded, not fatal to the others."""
        if self._loaded:
            return
        self._loaded = True
        for ep in entry_points(group=self.entry_point_group):
            if ep.name in self.commands:
                continue
            try:
                self.add_command(ep.load(), ep.name)
            except Exception as err:  # a broken plugin command must not take every other command down
                self._broken[ep.name] = f"{type(err).__name__}: {err}"

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Names of all subcommands, including entry-point ones."""
        self._load()
        return super().list_commands(ctx)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand; hyperplex and OS errors end as one line and exit code 1 (no traceback)."""
        with click_errors():
            return super().invoke(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Look up a subcommand, loading entry-point ones on first use (one that cannot load: a clear error)."""
        self._load()
        if cmd_name in self._broken and cmd_name not in self.commands:
            raise click.ClickException(
                f"The command {cmd_name!r} cannot be loaded ({self._broken[cmd_name]}); reinstall hyperplex."
            )
        return super().get_command(ctx, cmd_name)


@click.group(cls=EntryPointGroup, entry_point_group="hyperplex.commands")
@click.version_option(__version__, prog_name="hyperplex")
def main() -> None:
    """hyperplex: images with any number of channels.

    Methane plumes from EMIT radiance, multiplex microscopy, channel-adaptive ViTs.
    """


@main.group(cls=EntryPointGroup, entry_point_group="hyperplex.synth")
def synth() -> None:
    """Write synthetic data sets with known truth (offline, deterministic)."""


from hyperplex.common.cli.models import models  # noqa: E402  (torch is imported inside its commands)

main.add_command(models)
