"""The model zoo: channel-adaptive and hyperspectral architectures behind one contract.

``create_model(name, **overrides)`` builds a registered preset (``channels=`` sizes it to an image,
``pretrained=True`` loads shipped weights: ``list_models(pretrained=True)``),
``list_models(pattern, input=...)`` lists them,
``preset_info(name)`` tells what input a preset suits,
``load_model(path)`` rebuilds a model saved with ``model.save(path)``. Every model is called as
``model(x, channels)`` with ``x`` a (B, C, H, W) tensor and ``channels`` a
:class:`~hyperplex.common.channels.ChannelSet` or a list of wavelengths (nm) or names, and gives
dense features with ``model.feature_map(x, channels)`` (B, feature_dim, H / feature_stride,
W / feature_stride); see :class:`HyperplexModel` for the whole contract.
:func:`tiled_feature_map`, :func:`tiled_predict` and :func:`predict_markers` run any model over
images larger than memory; :class:`HierarchicalChannelSampler` draws ChannelViT's channel subsets.

Preset prefixes: ``channelvit_``, ``chadavit_``, ``lessvit_`` (and ``lessvit_hypermae_``),
``hypersegformer_``, ``hyperefficientvit_``, ``miphei_``, and ``vit_`` (the plain fixed-channel ViT
baseline); each family has a tiny ``<prefix>test``
preset. Layers live in :mod:`hyperplex.common.layers`; converters of official checkpoints and
family helpers stay in their family modules (e.g. :mod:`hyperplex.common.models.chada_vit`);
:func:`channelvit_from_official`, :func:`chadavit_from_official` and :func:`lessvit_from_official` build
a model from an official checkpoint with the official numerics switched on.
"""

import importlib
import pkgutil

from hyperplex.common.models._base import EncoderFeatures, HyperplexModel
from hyperplex.common.models._channel_tokens import ChannelTokenModel
from hyperplex.common.models._fixed_channels import FixedChannelModel, FixedChannelSegmenter
from hyperplex.common.models._registry import (
    INPUT_KINDS,
    WEIGHTS_DIR,
    PresetInfo,
    create_model,
    list_models,
    load_model,
    preset_info,
    preset_summary,
    register_model,
)
from hyperplex.common.models.chada_vit import ChAdaViT, chadavit_from_official
from hyperplex.common.models.channel_vit import ChannelViT, channelvit_from_official
from hyperplex.common.models.efficientvit import HyperEfficientViT
from hyperplex.common.models.hcs import HierarchicalChannelSampler
from hyperplex.common.models.hyper_mae import HyperMAE
from hyperplex.common.models.inference import predict_markers, tiled_feature_map, tiled_predict
from hyperplex.common.models.less_vit import LESSViT, lessvit_from_official
from hyperplex.common.models.miphei import MIPHEI
from hyperplex.common.models.segformer import HyperSegFormer
from hyperplex.common.models.vit import ViT

__all__ = [
    "INPUT_KINDS",
    "ChAdaViT",
    "ChannelTokenModel",
    "ChannelViT",
    "EncoderFeatures",
    "FixedChannelModel",
    "FixedChannelSegmenter",
    "HierarchicalChannelSampler",
    "HyperEfficientViT",
    "HyperMAE",
    "HyperSegFormer",
    "HyperplexModel",
    "LESSViT",
    "MIPHEI",
    "PresetInfo",
    "ViT",
    "chadavit_from_official",
    "channelvit_from_official",
    "create_model",
    "lessvit_from_official",
    "list_models",
    "load_model",
    "predict_markers",
    "WEIGHTS_DIR",
    "preset_info",
    "preset_summary",
    "register_model",
    "tiled_feature_map",
    "tiled_predict",
]


def _register_families() -> None:
    """Import every public module of this package, so that each family's presets are registered."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_register_families()
