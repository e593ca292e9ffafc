"""hyperplex.common: the channel-aware data model, tiling, errors and shared utilities.

Everything else in hyperplex builds on this subpackage; it imports nothing from ``hyperplex.geo``,
``hyperplex.bio`` or ``hyperplex.plugins``.
"""

from hyperplex.common._version import __version__
from hyperplex.common.arrays import as_channel_first, materialize
from hyperplex.common.atomic import atomic_path
from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import (
    ChannelMismatchError,
    DataNotFoundError,
    FileFormatError,
    HyperplexError,
    InvalidParameterError,
    MissingDependencyError,
    ModelCompatibilityError,
    NoValidDataError,
    OutputExistsError,
)
from hyperplex.common.progress import progress, quiet
from hyperplex.common.tiling import Stitcher, Tiler, Window, apply_tiled, iter_tiles

__all__ = [
    "ChannelMismatchError",
    "ChannelSet",
    "DataNotFoundError",
    "FileFormatError",
    "HyperplexError",
    "InvalidParameterError",
    "MissingDependencyError",
    "ModelCompatibilityError",
    "NoValidDataError",
    "OutputExistsError",
    "Stitcher",
    "Tiler",
    "Window",
    "__version__",
    "apply_tiled",
    "as_channel_first",
    "atomic_path",
    "iter_tiles",
    "materialize",
    "progress",
    "quiet",
]
