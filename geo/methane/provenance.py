"""Provenance of xarray results: a filter's name and parameters in the output DataArray's attributes.

:func:`records_method` decorates a public filter. For xarray input the filter already returns a
DataArray that keeps the input's non-channel coordinates (``lat``/``lon``/``elev`` in sensor geometry,
``x``/``y`` and ``spatial_ref`` on a map grid) and attributes (:func:`~.inputs.wrap_output`); the
decorator adds ``method`` and ``parameters`` (the call's options as JSON, so they survive NetCDF and
GeoTIFF tags). numpy results are returned unchanged.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

__all__ = ["method_parameters", "records_method"]

F = TypeVar("F", bound=Callable[..., Any])

#: Arguments that are data, not parameters.
_DATA_ARGS = frozenset({"cube", "wavelengths", "fwhm", "mask", "stats_mask", "template", "device"})


def _plain(value: Any) -> Any:
    """A JSON-friendly version of a parameter value (arrays and tuples as lists, other objects as text)."""
    if isinstance(value, (str, bool, int, float)) or value is None:
        return value
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in np.asarray(value, dtype=object).ravel()] if np.ndim(value) else _plain(value)
    return str(value)


def method_parameters(function: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The parameters of one call of ``function`` (defaults filled in), without the data arguments."""
    bound = inspect.signature(function).bind(*args, **kwargs)
    bound.apply_defaults()
    return {k: _plain(v) for k, v in bound.arguments.items() if k not in _DATA_ARGS}


def _stamp(result: Any, method: str, parameters: str) -> Any:
    if isinstance(result, tuple):
        return tuple(_stamp(r, method, parameters) for r in result)
    if hasattr(result, "dims") and hasattr(result, "attrs"):
        result.attrs.update({"method": method, "parameters": parameters})
    return result


def records_method(method: str) -> Callable[[F], F]:
    """Decorate a filter so that its DataArray results carry ``attrs["method"]`` and ``attrs["parameters"]``."""

    def decorate(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = function(*args, **kwargs)
            if not isinstance(result, tuple) and not hasattr(result, "dims"):
                return result
            return _stamp(result, method, json.dumps(method_parameters(function, args, kwargs)))

        return wrapper  # type: ignore[return-value]

    return decorate
