"""Exception hierarchy.

Every error hyperplex raises derives from :class:`HyperplexError` and from the matching built-in
exception, so callers can catch either ``HyperplexError`` or, say, ``ValueError``. Messages name the
file or parameter at fault and say what to do about it.
"""

from __future__ import annotations

__all__ = [
    "ChannelMismatchError",
    "DataNotFoundError",
    "FileFormatError",
    "HyperplexError",
    "InvalidParameterError",
    "MissingDependencyError",
    "ModelCompatibilityError",
    "NoValidDataError",
    "OutputExistsError",
]


class HyperplexError(Exception):
    """Base class of every error raised by hyperplex."""


class InvalidParameterError(HyperplexError, ValueError):
    """A parameter has a value the function cannot use."""


class ChannelMismatchError(HyperplexError, ValueError):
    """Channel metadata does not match the data (count, order or identity)."""


class FileFormatError(HyperplexError, ValueError):
    """A file is not in the expected format, or lacks a group, variable or attribute."""


class DataNotFoundError(HyperplexError, FileNotFoundError):
    """An input file or directory does not exist."""


class NoValidDataError(HyperplexError, ValueError):
    """Too few usable pixels: all are fill, masked or non-finite, or too few are left for the statistics."""


class MissingDependencyError(HyperplexError, ImportError):
    """An optional dependency is needed for this feature but is not installed."""


class ModelCompatibilityError(HyperplexError, ValueError):
    """A saved model or state dict does not fit the requested architecture or channels."""


class OutputExistsError(InvalidParameterError):
    """The output folder holds products another run (e.g. another method) made; they are not replaced silently."""
