"""OME-NGFF (OME-Zarr) metadata: build the 0.4 / 0.5 JSON, and parse any 0.1-0.5 multiscales entry."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hyperplex.common.channels import PALETTE, ChannelSet
from hyperplex.common.errors import FileFormatError, InvalidParameterError

__all__ = [
    "NGFF_VERSIONS",
    "axes_letters",
    "build_multiscales",
    "channels_from_omero",
    "level_scales",
    "ome_attrs",
    "omero_channels",
    "unwrap_ome",
]

NGFF_VERSIONS = ("0.4", "0.5")


def build_multiscales(
    name: str,
    axes: str,
    paths: Sequence[str],
    factors: Sequence[tuple[float, float]],
    pixel_size_um: tuple[float, float] | None,
    version: str,
) -> dict[str, Any]:
    """One ``multiscales`` entry for an image whose axes are ``axes`` (e.g. ``"cyx"`` or ``"yx"``).

    Args:
        name: Image name.
        axes: Axis letters; ``c`` is a channel axis, ``y``/``x`` space axes (in µm when the pixel size is known).
        paths: Dataset paths, finest first.
        factors: Downsampling factor ``(y, x)`` of each level relative to level 0.
        pixel_size_um: Level-0 ``(y, x)`` pixel size in µm, or None (unitless scale 1).
        version: ``"0.4"`` or ``"0.5"`` (0.5 keeps the version in the ``ome`` wrapper instead).

    Returns:
        The JSON-serialisable dict.
    """
    base = pixel_size_um or (1.0, 1.0)
    axis_list = [_axis(a, pixel_size_um is not None) for a in axes]
    datasets = []
    for path, factor in zip(paths, factors):
        scale = [1.0 if a == "c" else float(base[0] * factor[0] if a == "y" else base[1] * factor[1]) for a in axes]
        datasets.append({"path": path, "coordinateTransformations": [{"type": "scale", "scale": scale}]})
    entry: dict[str, Any] = {"name": name, "axes": axis_list, "datasets": datasets}
    if version == "0.4":
        entry = {"version": "0.4", **entry}
    return entry


def _axis(letter: str, has_unit: bool) -> dict[str, Any]:
    if letter == "c":
        return {"name": "c", "type": "channel"}
    axis: dict[str, Any] = {"name": letter, "type": "space"}
    if has_unit:
        axis["unit"] = "micrometer"
    return axis


def ome_attrs(content: Mapping[str, Any], version: str) -> dict[str, Any]:
    """Wrap top-level NGFF keys as the group attributes of ``version`` (0.5 nests them under ``"ome"``)."""
    if version not in NGFF_VERSIONS:
        raise InvalidParameterError(f"`ngff_version` must be one of {NGFF_VERSIONS}; got {version!r}.")
    if version == "0.5":
        return {"ome": {"version": "0.5", **content}}
    return dict(content)


def unwrap_ome(attrs: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The NGFF keys of a group's attributes and their version (0.5 ``ome`` wrapper or 0.1-0.4 top level)."""
    if "ome" in attrs and isinstance(attrs["ome"], Mapping):
        ome = dict(attrs["ome"])
        return ome, str(ome.get("version")) if ome.get("version") is not None else None
    multiscales = attrs.get("multiscales")
    version = multiscales[0].get("version") if multiscales and isinstance(multiscales[0], Mapping) else None
    return dict(attrs), None if version is None else str(version)


def axes_letters(entry: Mapping[str, Any], ndim: int, source: str) -> tuple[str, dict[str, str | None]]:
    """Axis letters (upper case) and per-axis units of a multiscales entry; 0.1/0.2 imply ``TCZYX``.

    Raises:
        FileFormatError: If the axes do not match the array's dimensionality.
    """
    axes = entry.get("axes")
    if axes is None:
        names, units = list("tczyx")[-ndim:], {}
    else:
        names = [a["name"] if isinstance(a, Mapping) else str(a) for a in axes]
        units = {a["name"].upper(): a.get("unit") for a in axes if isinstance(a, Mapping)}
    if len(names) != ndim:
        raise FileFormatError(f"{source}: multiscales declares axes {names} for {ndim}-D arrays.")
    return "".join(n[0].upper() if n.lower() in ("c", "t", "z", "y", "x") else "Q" for n in names), units


def level_scales(entry: Mapping[str, Any], index: int, ndim: int) -> np.ndarray:
    """Total ``scale`` of dataset ``index`` (its own transform times the multiscale-wide one; 1 if absent)."""
    scale = np.ones(ndim)
    own = entry["datasets"][index].get("coordinateTransformations")
    for transforms in (own, entry.get("coordinateTransformations")):
        for transform in transforms or []:
            if transform.get("type") == "scale" and "scale" in transform:
                scale = scale * np.asarray(transform["scale"], dtype=float)
    return scale


def omero_channels(channels: ChannelSet, windows: Sequence[tuple[float, float]] | None = None) -> list[dict[str, Any]]:
    """OME-NGFF ``omero.channels`` entries (label, colour, active, window) for ``channels``.

    Wavelengths go into ``wavelength_nm``, our own extension key. A single channel without a colour is
    white; several cycle through :data:`~hyperplex.common.channels.PALETTE`.
    """
    out = []
    for i, label in enumerate(channels.names):
        entry: dict[str, Any] = {"label": label, "active": True}
        color = channels.colors[i] if channels.colors is not None else _default_color(i, len(channels))
        entry["color"] = color.lstrip("#").upper()
        if windows is not None:
            lo, hi = windows[i]
            entry["window"] = {"start": float(lo), "end": float(hi), "min": float(lo), "max": float(hi)}
        if channels.wavelengths is not None:
            entry["wavelength_nm"] = float(channels.wavelengths[i])
        out.append(entry)
    return out


def channels_from_omero(entries: Sequence[Mapping[str, Any]]) -> ChannelSet:
    """Channels of ``omero.channels`` entries; inverse of :func:`omero_channels`."""
    names = tuple(str(c.get("label", f"c{i}")) for i, c in enumerate(entries))
    has_colors = all("color" in c for c in entries)
    colors = tuple("#" + str(c["color"]).lstrip("#") for c in entries) if has_colors else None
    if entries and all("wavelength_nm" in c for c in entries):
        return ChannelSet(names, [c["wavelength_nm"] for c in entries], colors=colors)
    return ChannelSet(names, colors=colors)


def _default_color(i: int, count: int) -> str:
    return "#FFFFFF" if count == 1 else PALETTE[i % len(PALETTE)]
