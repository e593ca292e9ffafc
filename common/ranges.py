"""Numeric ranges declared once, next to a dataclass field, and enforced by click and by the class.

A configuration field declared with :func:`ranged` carries its :class:`Range` in the field's metadata;
:func:`check_fields` (called from ``__post_init__``) raises :class:`InvalidParameterError` for a value
outside it (Python API callers), and :meth:`Range.click_type` gives the matching ``click.IntRange`` or
``click.FloatRange`` (command-line users get click's one-line usage error naming the option).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from hyperplex.common.errors import InvalidParameterError

if TYPE_CHECKING:
    import click

__all__ = ["Range", "check_fields", "field_range", "ranged"]


@dataclass(frozen=True)
class Range:
    """Allowed values of a number: ``lo <= x <= hi`` (``<`` where open); None for no bound."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def contains(self, value: float) -> bool:
        """Whether ``value`` is a finite number inside the range."""
        if not math.isfinite(value):
            return False
        above = self.lo is None or (value > self.lo if self.lo_open else value >= self.lo)
        below = self.hi is None or (value < self.hi if self.hi_open else value <= self.hi)
        return above and below

    def describe(self) -> str:
        """The range as text, e.g. ``0 < x <= 1``."""
        left = "" if self.lo is None else f"{self.lo:g} {'<' if self.lo_open else '<='} "
        right = "" if self.hi is None else f" {'<' if self.hi_open else '<='} {self.hi:g}"
        return f"{left}x{right}"

    def check(self, name: str, value: Any) -> None:
        """Raise :class:`InvalidParameterError` naming ``name`` if ``value`` (or any item of a tuple) is outside.

        None passes (an optional parameter left unset).
        """
        items = value if isinstance(value, (tuple, list)) else (value,)
        for item in items:
            if item is not None and not (isinstance(item, (int, float)) and self.contains(float(item))):
                raise InvalidParameterError(f"`{name}` must be a number with {self.describe()}; got {value!r}.")

    def click_type(self, kind: type = float) -> click.ParamType:
        """The click parameter type of this range for ``int`` or ``float`` values."""
        import click  # only the command line needs it

        if kind is int:
            lo = None if self.lo is None else math.floor(self.lo) + 1 if self.lo_open else math.ceil(self.lo)
            hi = None if self.hi is None else math.ceil(self.hi) - 1 if self.hi_open else math.floor(self.hi)
            return click.IntRange(lo, hi)
        return click.FloatRange(self.lo, self.hi, min_open=self.lo_open, max_open=self.hi_open)


def ranged(default: Any, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
           hi_open: bool = False) -> Any:  # fmt: skip
    """A dataclass field with ``default`` whose values must lie in the given :class:`Range`."""
    return field(default=default, metadata={"range": Range(lo, hi, lo_open, hi_open)})


def field_range(cls: type, name: str) -> Range | None:
    """The :class:`Range` declared for field ``name`` of dataclass ``cls``, or None."""
    return next((f.metadata.get("range") for f in fields(cls) if f.name == name), None)


def check_fields(obj: Any) -> None:
    """Check every ranged field of the dataclass instance ``obj``.

    Raises:
        InvalidParameterError: Naming the first field whose value is outside its range.
    """
    for f in fields(obj):
        rng = f.metadata.get("range")
        if rng is not None:
            rng.check(f.name, getattr(obj, f.name))
