"""Constructor-argument capture for :class:`~hyperplex.common.models._base.HyperplexModel` subclasses.

Every subclass's ``__init__`` is wrapped so that the bound arguments of the most-derived constructor
end up in ``model.config`` as JSON types; ``type(model)(**model.config)`` then rebuilds the
architecture, which is what :func:`hyperplex.common.models.load_model` relies on.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from typing import Any

from hyperplex.common.errors import InvalidParameterError

__all__ = ["capture_config"]


def _jsonable(value: Any, where: str) -> Any:
    """Normalise a config value to JSON types (tuples become lists), or raise."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as err:
        raise InvalidParameterError(
            f"Model argument `{where}` = {value!r} is not JSON-serialisable; model constructors must take "
            "plain values (numbers, strings, lists, dicts) so the model can be saved and rebuilt."
        ) from err


def _bound_config(signature: inspect.Signature, args: tuple, kwargs: dict) -> dict[str, Any]:
    bound = signature.bind(None, *args, **kwargs)
    bound.apply_defaults()
    config: dict[str, Any] = {}
    for name, value in list(bound.arguments.items())[1:]:  # skip self
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            config.update({k: _jsonable(v, k) for k, v in value.items()})
        elif kind is not inspect.Parameter.VAR_POSITIONAL:
            config[name] = _jsonable(value, name)
    return config


def _defining_class(cls: type) -> type:
    """The first class in the MRO that defines ``__init__`` (whose arguments make the config)."""
    return next(k for k in cls.__mro__ if "__init__" in k.__dict__)


def capture_config(cls: type, init: Callable[..., None]) -> Callable[..., None]:
    """Wrap ``cls.__init__`` so that the most-derived constructor's arguments become ``self.config``.

    Args:
        cls: The class defining ``init``.
        init: Its ``__init__``.

    Returns:
        The wrapped constructor.
    """
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapped(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if _defining_class(type(self)) is cls:  # only the most-derived constructor defines the config
            self.config = _bound_config(signature, args, kwargs)

    return wrapped
