"""The methane detection methods: one registry read by the detection pipeline, the CLI and the napari plugin.

A method is a function with the filters' contract::

    f(cube, wavelengths, fwhm, *, mask=None, window=None, [group=...], **options) -> (H, W) array

``cube`` is channel-first radiance, ``mask`` (H, W) marks excluded pixels (NaN in the output) and the
pipeline passes ``window=None`` because it has already chosen the bands. The output is a CH4 enhancement
in ppm·m or a detection score. Entries name their function by a dotted path (``"package.module:function"``)
that is imported on first use, so listing methods (``--method`` choices, the plugin's menu) never imports a
model. Registering a method is one :func:`register_method` call; the built-in filters are registered at the
bottom of this module (an explicit table, as torchgeo's ``models/api.py``).

Methods that need more than the cube, such as a learned segmentation model, take their extra arguments as
keyword options: the entry's ``defaults`` (e.g. a model name) and a run's options
(``DetectConfig.method_options``, ``hyperplex methane detect -O weights=path``) that override them.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType
from typing import Any

from hyperplex.common.errors import InvalidParameterError

__all__ = [
    "GROUPINGS",
    "PIPELINE_ARGUMENTS",
    "PPMM",
    "SCORE",
    "UNITS",
    "Method",
    "get_method",
    "list_methods",
    "register_method",
]

#: Output units of a CH4 enhancement.
PPMM = "ppm·m"
#: Output units of a detection score (unitless, method-specific scale).
SCORE = "score"
#: Every output kind a method may declare.
UNITS = (PPMM, SCORE)
#: Statistics groupings a method may support: per detector column, or per tile.
GROUPINGS = ("column", "tile")
#: Arguments the caller manages; a run's method options may not set them.
PIPELINE_ARGUMENTS = ("cube", "wavelengths", "fwhm", "mask", "window", "group")


@dataclass(frozen=True)
class Method:
    """One registered detection method.

    Attributes:
        name: Name as spelled on the command line and in outputs (``"mag1c-sas"``).
        function: ``"package.module:function"`` (imported on first use) or the function itself.
        units: :data:`PPMM` for a CH4 enhancement, :data:`SCORE` for a detection score.
        description: One line for ``--help``, ``hyperplex methane methods`` and the plugin.
        grouping: Values the function's ``group`` argument takes, its default first (statistics per detector
            ``"column"`` or per ``"tile"``); empty when it has no ``group`` argument.
        defaults: Keyword options passed on every call (a learned method's model name, say); a run's options
            override them.
        threshold: A fixed plume threshold in the output's units (0.5 for a probability), applied by the
            detection pipeline instead of the map's background statistics; None for statistics.
        preload: Starts slow one-time set-up in the background (compiled kernels, a model) and returns at
            once: ``"package.module:function"`` or the function; the pipeline calls it before reading.
    """

    name: str
    function: str | Callable[..., Any]
    units: str
    description: str
    grouping: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)
    threshold: float | None = None
    preload: str | Callable[[], Any] | None = None

    @property
    def is_score(self) -> bool:
        """True when the output is a detection score, not a CH4 enhancement."""
        return self.units == SCORE

    def load(self) -> Callable[..., Any]:
        """The method's function (imported now if given as a dotted path)."""
        return _import(self.function) if isinstance(self.function, str) else self.function

    def start_preload(self) -> None:
        """Start the method's one-time set-up in the background (see ``preload``); returns at once."""
        if self.preload is not None:
            (_import(self.preload) if isinstance(self.preload, str) else self.preload)()

    def check_group(self, group: str | None) -> None:
        """Raise :class:`InvalidParameterError` unless ``group`` is None or one the method supports."""
        if group is None or group in self.grouping:
            return
        if not self.grouping:
            raise InvalidParameterError(f"Method {self.name!r} has a fixed statistics grouping; leave `group` unset "
                                        f"(got {group!r}).")  # fmt: skip
        raise InvalidParameterError(f"`group` for method {self.name!r} must be one of {self.grouping}; got {group!r}.")

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Raise :class:`InvalidParameterError` for options the function does not take (imports the function)."""
        reserved = sorted(set(options) & set(PIPELINE_ARGUMENTS))
        if reserved:
            raise InvalidParameterError(f"Method options {reserved} are set by the pipeline, not by the options.")
        params = inspect.signature(self.load()).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return
        allowed = sorted(set(params) - set(PIPELINE_ARGUMENTS))
        unknown = sorted(set(options) - set(params))
        if unknown:
            raise InvalidParameterError(f"Method {self.name!r} has no option {unknown}; its options are {allowed}.")

    def __call__(self, cube: Any, wavelengths: Any, fwhm: Any, *, group: str | None = None, **options: Any) -> Any:
        """Run the method: ``defaults`` and ``options`` as keywords, ``group`` where the method has one.

        Raises:
            InvalidParameterError: For a grouping or an option the method does not take.
        """
        self.check_group(group)
        kwargs = {**self.defaults, **options}
        if self.grouping:
            kwargs["group"] = group or self.grouping[0]
        self.check_options({k: v for k, v in kwargs.items() if k not in ("mask", "window", "group")})
        return self.load()(cube, wavelengths, fwhm, **kwargs)


_METHODS: dict[str, Method] = {}


@cache
def _import(path: str) -> Callable[..., Any]:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def register_method(
    name: str,
    function: str | Callable[..., Any],
    *,
    units: str,
    description: str,
    grouping: tuple[str, ...] = (),
    defaults: Mapping[str, Any] | None = None,
    replace: bool = False,
    threshold: float | None = None,
    preload: str | Callable[[], Any] | None = None,
) -> Method:
    """Add a detection method to the registry (see :class:`Method` for the fields).

    Args:
        name: Command-line name, lower case with ``-`` between words.
        function: ``"package.module:function"`` (imported on first use) or the function.
        units: :data:`PPMM` or :data:`SCORE`.
        description: One line.
        grouping: Values of the function's ``group`` argument, its default first; empty when it has none.
        defaults: Keyword options passed on every call.
        replace: Allow replacing a method of the same name.
        threshold: Fixed plume threshold in the output's units (see :class:`Method`).
        preload: ``"package.module:function"`` or a function without arguments that starts slow one-time
            set-up in the background and returns at once (e.g. loading compiled kernels); the pipeline
            calls it before reading a scene.

    Returns:
        The registered entry.

    Raises:
        InvalidParameterError: For a taken name (without ``replace``), bad units, grouping or function path.
    """
    if not replace and name in _METHODS:
        raise InvalidParameterError(f"Methane method {name!r} is already registered; pass replace=True to replace it.")
    if not name or name != name.strip().lower() or " " in name:
        raise InvalidParameterError(f"Method name must be lower case without spaces; got {name!r}.")
    if units not in UNITS:
        raise InvalidParameterError(f"`units` of method {name!r} must be one of {UNITS}; got {units!r}.")
    if not set(grouping) <= set(GROUPINGS):
        raise InvalidParameterError(f"`grouping` of method {name!r} must be drawn from {GROUPINGS}; got {grouping}.")
    if isinstance(function, str) and ":" not in function:
        raise InvalidParameterError(
            f"`function` of method {name!r} must be 'package.module:function'; got {function!r}."
        )
    defaults = MappingProxyType(dict(defaults or {}))
    entry = Method(name, function, units, description, tuple(grouping), defaults, threshold, preload)
    _METHODS[name] = entry
    return entry


def get_method(name: str) -> Method:
    """The registry entry of method ``name``.

    Raises:
        InvalidParameterError: For an unknown name; the message lists the registered ones.
    """
    try:
        return _METHODS[name]
    except KeyError:
        raise InvalidParameterError(f"Unknown methane method {name!r}; choose one of: {', '.join(_METHODS)}.") from None


def list_methods(kind: str | None = None) -> list[str]:
    """Names of the registered methods, in registration order.

    Args:
        kind: Only methods with these output units (:data:`PPMM` or :data:`SCORE`); None lists all.

    Raises:
        InvalidParameterError: For a ``kind`` that is not an output unit.
    """
    if kind is not None and kind not in UNITS:
        raise InvalidParameterError(f"`kind` must be one of {UNITS} or None; got {kind!r}.")
    return [name for name, entry in _METHODS.items() if kind is None or entry.units == kind]


# ------------------------------------------------------------------ built-in methods
_PKG = "hyperplex.geo.methane"
register_method(
    "mf",
    f"{_PKG}.classic:matched_filter",
    units=PPMM,
    grouping=("column", "tile"),
    description="Classic matched filter, as EMIT's operational CH4 product.",
)
register_method(
    "mag1c",
    f"{_PKG}.mag1c_filter:mag1c",
    units=PPMM,
    grouping=("column", "tile"),
    preload=f"{_PKG}.mag1c_filter.api:preload_kernels",
    description="Mag1c: sparse, albedo-corrected iterative matched filter (Foote et al. 2020).",
)
register_method(
    "mag1c-sas",
    f"{_PKG}.sas:mag1c_sas",
    units=PPMM,
    description="Mag1c-SAS: Mag1c statistics from a strided sample, per tile (onboard benchmark).",
)
register_method(
    "cem",
    f"{_PKG}.classic:cem",
    units=SCORE,
    grouping=("tile", "column"),
    description="Constrained energy minimisation score (correlation matrix, no mean removal).",
)
register_method(
    "ace",
    f"{_PKG}.classic:ace",
    units=SCORE,
    grouping=("tile", "column"),
    description="Adaptive cosine estimator score in [0, 1].",
)
for _name, _arch in (("hypersegformer", "HyperSegFormer"), ("hyperefficientvit", "HyperEfficientViT")):
    register_method(
        _name,
        f"{_PKG}.learned:learned_segmentation",
        units=SCORE,
        defaults={"model": f"{_name}_plume"},
        threshold=0.5,
        description=f"Plume probability from a small {_arch} trained on synthetic scenes (-O weights=run file).",
    )
