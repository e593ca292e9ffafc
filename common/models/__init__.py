"""The model zoo: channel-adaptive and hyperspectral architectures behind one contract.

``create_model(name, **overrides)`` builds a registered preset, ``list_models(pattern)`` lists them,
``load_model(path)`` rebuilds a model saved with ``model.save(path)``. Every model is called as
``model(x, channels)`` with ``x`` a (B, C, H, W) tensor and ``channels`` a
:class:`~hyperplex.common.channels.ChannelSet` or a list of wavelengths (nm) or names.

Preset prefixes: ``channelvit_``, ``chadavit_``, ``lessvit_``, ``hypersegformer_``,
``hyperefficientvit_``, ``miphei_``; each family has a tiny ``<prefix>test`` preset.
"""

import importlib
import pkgutil

from hyperplex.common.models._base import HyperplexModel
from hyperplex.common.models._registry import create_model, list_models, load_model, register_model

__all__ = ["HyperplexModel", "create_model", "list_models", "load_model", "register_model"]

# Every public module of this package is a model family: importing it registers its presets, and
# the names in its ``__all__`` are re-exported here (so new families need no edit of this file).


def _import_families() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for public in getattr(module, "__all__", ()):
            globals()[public] = getattr(module, public)
            if public not in __all__:
                __all__.append(public)


_import_families()
