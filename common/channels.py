"""Channel identity: the one type that tells which channel is which, everywhere in hyperplex.

A :class:`ChannelSet` travels with every array (readers attach it, filters and models consume it).
Hyperspectral channels are identified by centre wavelength (and FWHM) in nanometres; microscopy
channels by marker name. Arrays in the library are channel-first, ``(C, H, W)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hyperplex.common.errors import ChannelMismatchError, InvalidParameterError

__all__ = ["PALETTE", "ChannelLike", "ChannelSet", "find_channel_dim"]

#: Anything :meth:`ChannelSet.coerce` accepts.
ChannelLike = Any

_UNIT_TO_NM = {
    "nm": 1.0, "nanometer": 1.0, "nanometers": 1.0, "nanometre": 1.0, "nanometres": 1.0,
    "um": 1e3, "µm": 1e3, "micrometer": 1e3, "micrometers": 1e3, "micron": 1e3, "microns": 1e3,
    "micrometre": 1e3, "micrometres": 1e3,
}  # fmt: skip
_CHANNEL_DIMS = ("wavelength", "band", "bands", "channel", "channels", "c")


def _float_array(values: Iterable[float] | None, name: str) -> np.ndarray | None:
    if values is None:
        return None
    arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64)
    if arr.ndim != 1:
        raise InvalidParameterError(f"`{name}` must be one value per channel (1-D), got shape {arr.shape}.")
    return arr


def _wavelength_name(nm: float) -> str:
    return f"{nm:.1f} nm"


@dataclass(frozen=True, eq=False)
class ChannelSet:
    """Names and physical identity of the channels of an image.

    Args:
        names: One label per channel (marker names, or e.g. ``"2300.4 nm"`` for spectral bands).
        wavelengths: Centre wavelengths in nm, or None for non-spectral channels (markers).
        fwhm: Full width at half maximum of each band in nm, where known.
        good: Per-channel quality flag (EMIT ``good_wavelengths``), where known.
        colors: Display colours (``"#rrggbb"``) per channel, where known (microscopy).

    Raises:
        ChannelMismatchError: If the per-channel fields differ in length.
        InvalidParameterError: If wavelengths or FWHM are not finite and positive.
    """

    names: tuple[str, ...]
    wavelengths: np.ndarray | None = None
    fwhm: np.ndarray | None = None
    good: np.ndarray | None = None
    colors: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(str(n) for n in self.names))
        for field in ("wavelengths", "fwhm"):
            arr = _float_array(getattr(self, field), field)
            if arr is not None and not (np.all(np.isfinite(arr)) and np.all(arr > 0)):
                raise InvalidParameterError(
                    f"`{field}` must be finite and positive (nm); got {arr[~(np.isfinite(arr) & (arr > 0))][:5]}."
                )
            object.__setattr__(self, field, arr)
        if self.good is not None:
            object.__setattr__(self, "good", np.asarray(self.good, dtype=bool).ravel())
        if self.colors is not None:
            object.__setattr__(self, "colors", tuple(str(c) for c in self.colors))
        self._check_lengths()

    def _check_lengths(self) -> None:
        n = len(self.names)
        for field in ("wavelengths", "fwhm", "good", "colors"):
            value = getattr(self, field)
            if value is not None and len(value) != n:
                raise ChannelMismatchError(
                    f"ChannelSet has {n} names but {len(value)} `{field}`; give one value per channel."
                )

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_wavelengths(
        cls,
        wavelengths: Iterable[float],
        fwhm: Iterable[float] | None = None,
        *,
        names: Sequence[str] | None = None,
        good: Iterable[bool] | None = None,
        units: str = "nm",
    ) -> ChannelSet:
        """Build spectral channels from centre wavelengths.

        Args:
            wavelengths: Band centres, in ``units``.
            fwhm: Band widths, in ``units``.
            names: Channel labels; default ``"<wavelength> nm"``.
            good: Per-band quality flags.
            units: Unit of ``wavelengths`` and ``fwhm`` (nm or µm spellings).

        Returns:
            The channel set, wavelengths in nm.
        """
        scale = _unit_scale(units)
        wl = _float_array(wavelengths, "wavelengths") * scale
        fw = None if fwhm is None else _float_array(fwhm, "fwhm") * scale
        labels = tuple(names) if names is not None else tuple(_wavelength_name(w) for w in wl)
        good_arr = None if good is None else np.asarray(list(good) if not isinstance(good, np.ndarray) else good)
        return cls(labels, wl, fw, good_arr)

    @classmethod
    def from_names(cls, names: Iterable[str], colors: Iterable[str] | None = None) -> ChannelSet:
        """Build named (marker) channels.

        Args:
            names: One marker or channel name per channel.
            colors: Optional display colours.

        Returns:
            The channel set.
        """
        return cls(tuple(names), colors=None if colors is None else tuple(colors))

    @classmethod
    def default(cls, count: int) -> ChannelSet:
        """Anonymous channels ``c0 .. c{count-1}`` for data that carries no channel metadata."""
        return cls(tuple(f"c{i}" for i in range(count)))

    @classmethod
    def coerce(cls, channels: ChannelLike, count: int | None = None, *, name: str = "channels") -> ChannelSet:
        """Turn any supported channel description into a :class:`ChannelSet`.

        Accepts a ChannelSet, a sequence of wavelengths in nm (numbers), a sequence of names
        (strings), a mapping from :meth:`to_dict`, or an xarray object with a channel dimension.

        Args:
            channels: The description.
            count: Expected number of channels (the data's), checked when given.
            name: Parameter name used in error messages.

        Returns:
            The channel set.

        Raises:
            ChannelMismatchError: If the count differs from ``count``.
            InvalidParameterError: If the description cannot be interpreted.
        """
        result = _coerce(cls, channels, name)
        if count is not None and len(result) != count:
            raise ChannelMismatchError(
                f"`{name}` describes {len(result)} channels but the data has {count}; "
                "pass one wavelength or name per channel, in the data's channel order."
            )
        return result

    # ----------------------------------------------------------------- container protocol
    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __getitem__(self, index: int | slice | Sequence[int] | np.ndarray) -> ChannelSet:
        """Return the sub-set of channels at ``index`` (int, slice, indices or boolean mask)."""
        idx = np.arange(len(self))[index]
        idx = np.atleast_1d(idx)

        def pick(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else values[idx]

        return ChannelSet(
            tuple(self.names[i] for i in idx),
            pick(self.wavelengths),
            pick(self.fwhm),
            pick(self.good),
            None if self.colors is None else tuple(self.colors[i] for i in idx),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ChannelSet):
            return NotImplemented
        return self.names == other.names and all(
            _same(getattr(self, f), getattr(other, f)) for f in ("wavelengths", "fwhm", "good", "colors")
        )

    def __hash__(self) -> int:
        return hash(self.names)

    def __repr__(self) -> str:
        if self.is_spectral:
            wl = self.wavelengths
            return f"ChannelSet({len(self)} bands, {wl.min():.1f}-{wl.max():.1f} nm)"
        shown = ", ".join(self.names[:6]) + (", ..." if len(self) > 6 else "")
        return f"ChannelSet([{shown}])"

    # ----------------------------------------------------------------- queries
    @property
    def is_spectral(self) -> bool:
        """True when every channel has a wavelength."""
        return self.wavelengths is not None

    def require_wavelengths(self, what: str = "this operation") -> np.ndarray:
        """Return the wavelengths, or raise a clear error when the channels have none."""
        if self.wavelengths is None:
            raise ChannelMismatchError(
                f"{what} needs band wavelengths in nm, but the channels are named only "
                f"({', '.join(self.names[:4])}...); pass wavelengths (a ChannelSet or a list of floats)."
            )
        return self.wavelengths

    def index(self, key: str | float) -> int:
        """Index of a channel by name, or of the band nearest a wavelength (nm).

        Raises:
            ChannelMismatchError: If the name is unknown.
        """
        if isinstance(key, str):
            if key in self.names:
                return self.names.index(key)
            raise ChannelMismatchError(f"No channel named {key!r}; available: {', '.join(self.names)}.")
        return self.nearest(float(key))

    def nearest(self, wavelength_nm: float) -> int:
        """Index of the band whose centre is nearest ``wavelength_nm``."""
        wl = self.require_wavelengths("Looking up a band by wavelength")
        return int(np.argmin(np.abs(wl - wavelength_nm)))

    def window(self, low_nm: float, high_nm: float) -> np.ndarray:
        """Indices of the bands with centres in ``[low_nm, high_nm]``."""
        wl = self.require_wavelengths("Selecting a wavelength window")
        return np.flatnonzero((wl >= low_nm) & (wl <= high_nm))

    # ----------------------------------------------------------------- conversions
    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (round-trips through :meth:`from_dict`)."""
        out: dict[str, Any] = {"names": list(self.names)}
        for field in ("wavelengths", "fwhm", "good"):
            value = getattr(self, field)
            if value is not None:
                out[field] = value.tolist()
        if self.colors is not None:
            out["colors"] = list(self.colors)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChannelSet:
        """Inverse of :meth:`to_dict`."""
        if "names" not in data:
            raise InvalidParameterError("Channel metadata lacks 'names'; expected the output of to_dict().")
        return cls(
            tuple(data["names"]),
            data.get("wavelengths"),
            data.get("fwhm"),
            data.get("good"),
            data.get("colors"),
        )

    def to_json(self) -> str:
        """The :meth:`to_dict` form as a JSON string."""
        return json.dumps(self.to_dict())

    def to_xarray_coords(self, dim: str = "band") -> dict[str, Any]:
        """Coordinates for an xarray object whose channel dimension is ``dim``."""
        coords: dict[str, Any] = {dim: list(self.names)}
        if self.wavelengths is not None:
            coords["wavelength"] = (dim, self.wavelengths, {"units": "nm"})
        if self.fwhm is not None:
            coords["fwhm"] = (dim, self.fwhm, {"units": "nm"})
        if self.good is not None:
            coords["good_wavelengths"] = (dim, self.good)
        if self.colors is not None:
            coords["color"] = (dim, list(self.colors))
        return coords

    @classmethod
    def from_xarray(cls, obj: Any, dim: str | None = None) -> ChannelSet:
        """Read channels from an xarray DataArray/Dataset's channel dimension and coordinates.

        Args:
            obj: The xarray object.
            dim: Channel dimension; found automatically among wavelength/band/bands/channel/c.

        Raises:
            ChannelMismatchError: If no channel dimension can be found.
        """
        dim = dim or find_channel_dim(obj)
        coords = obj.coords
        wl = _coord_values(coords, dim, ("wavelength", "wavelengths"))
        if wl is None and dim in ("wavelength", "wavelengths") and dim in coords:
            wl = np.asarray(coords[dim].values, dtype=float)
        names = _coord_values(coords, dim, (dim,)) if dim not in ("wavelength", "wavelengths") else None
        count = obj.sizes[dim]
        if wl is not None:
            source = next((k for k in ("wavelength", "wavelengths", dim) if k in coords), dim)
            units = str(coords[source].attrs.get("units", "nm"))
            labels = [str(n) for n in names] if names is not None and names.dtype.kind in "UO" else None
            good = _coord_values(coords, dim, ("good_wavelengths", "good"))
            return cls.from_wavelengths(wl, _coord_values(coords, dim, ("fwhm",)), names=labels, good=good, units=units)
        if names is not None:
            colors = _coord_values(coords, dim, ("color",))
            return cls(tuple(str(n) for n in names), colors=None if colors is None else tuple(colors))
        return cls.default(count)

    def checked(self, count: int, source: str = "data") -> ChannelSet:
        """Return self after checking it describes exactly ``count`` channels."""
        if len(self) != count:
            raise ChannelMismatchError(f"{source}: {len(self)} channel labels for {count} channels.")
        return self


# --------------------------------------------------------------------- helpers
def find_channel_dim(obj: Any) -> str:
    """Name of the channel dimension of an xarray object.

    Raises:
        ChannelMismatchError: If none of the usual names is present.
    """
    for dim in _CHANNEL_DIMS:
        if dim in obj.dims:
            return dim
    raise ChannelMismatchError(
        f"Cannot find a channel dimension among {tuple(obj.dims)}; name it one of {_CHANNEL_DIMS}."
    )


def _coord_values(coords: Any, dim: str, keys: Sequence[str]) -> np.ndarray | None:
    for key in keys:
        if key in coords and coords[key].dims == (dim,):
            return np.asarray(coords[key].values)
    return None


def _coerce(cls: type[ChannelSet], channels: ChannelLike, name: str) -> ChannelSet:
    if isinstance(channels, ChannelSet):
        return channels
    if isinstance(channels, Mapping):
        return cls.from_dict(channels)
    if hasattr(channels, "dims") and hasattr(channels, "coords"):
        return cls.from_xarray(channels)
    if hasattr(channels, "detach"):  # torch tensor of wavelengths
        channels = channels.detach().cpu().numpy()
    if isinstance(channels, (str, bytes)) or not isinstance(channels, (Sequence, np.ndarray)):
        raise InvalidParameterError(
            f"`{name}` must be a ChannelSet, a list of wavelengths in nm or a list of channel names; "
            f"got {type(channels).__name__}."
        )
    values = list(channels)
    if all(isinstance(v, str) for v in values):
        return cls.from_names(values)
    try:
        return cls.from_wavelengths([float(v) for v in values])
    except (TypeError, ValueError) as err:
        raise InvalidParameterError(
            f"`{name}` mixes names and numbers; give wavelengths (nm) or names, not both."
        ) from err


def _unit_scale(units: str) -> float:
    key = units.strip().lower()
    if key not in _UNIT_TO_NM:
        raise InvalidParameterError(f"Unknown wavelength unit {units!r}; use nm or µm.")
    return _UNIT_TO_NM[key]


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, np.ndarray):
        return a.shape == np.shape(b) and bool(np.allclose(a, b, rtol=0, atol=1e-6))
    return tuple(a) == tuple(b)


#: Default display colours (``#RRGGBB``) for channels without their own, cycled in this order.
PALETTE = ("#0000FF", "#00FF00", "#FF0000", "#FF00FF", "#00FFFF", "#FFFF00", "#FF8000", "#8000FF")
