"""Physical length units of pixel sizes, converted to micrometres."""

from __future__ import annotations

from hyperplex.common.errors import InvalidParameterError

__all__ = ["to_micrometers"]

_TO_UM = {
    "nm": 1e-3, "nanometer": 1e-3, "nanometre": 1e-3,
    "um": 1.0, "µm": 1.0, "μm": 1.0, "micrometer": 1.0, "micrometre": 1.0, "micron": 1.0, "microns": 1.0,
    "mm": 1e3, "millimeter": 1e3, "millimetre": 1e3,
    "cm": 1e4, "centimeter": 1e4, "centimetre": 1e4,
    "m": 1e6, "meter": 1e6, "metre": 1e6,
    "in": 25400.0, "inch": 25400.0,
    "pm": 1e-6, "picometer": 1e-6, "angstrom": 1e-4, "å": 1e-4,
}  # fmt: skip


def to_micrometers(value: float, unit: str | None, *, source: str = "metadata") -> float:
    """Convert a length to micrometres.

    Args:
        value: The length.
        unit: Its unit (OME ``PhysicalSizeXUnit`` spellings, NGFF axis units, ImageJ ``unit``); None means µm.
        source: What the value came from, for error messages.

    Returns:
        The length in µm.

    Raises:
        InvalidParameterError: If the unit is unknown or the value is not finite and positive.
    """
    key = "um" if unit is None else str(unit).strip().lower()
    if key not in _TO_UM:
        raise InvalidParameterError(f"{source}: unknown length unit {unit!r}; expected e.g. µm, nm, mm.")
    result = float(value) * _TO_UM[key]
    if not result > 0 or result == float("inf"):
        raise InvalidParameterError(f"{source}: pixel size must be finite and positive, got {value!r} {unit}.")
    return result
