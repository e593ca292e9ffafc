"""OME-Zarr reader: NGFF 0.4 (zarr v2) and 0.5 (zarr v3) multiscale images, lazily, with omero channels."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dask.array as da

from hyperplex.bio.axes import to_cyx
from hyperplex.bio.ngff import axes_letters, channels_from_omero, level_scales, unwrap_ome
from hyperplex.bio.rgb import looks_rgb, mark_rgb
from hyperplex.bio.units import to_micrometers
from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import DataNotFoundError, FileFormatError, HyperplexError
from hyperplex.common.image import MultiscaleImage
from hyperplex.common.lazyread import guarded_getter

__all__ = ["read_ome_zarr", "read_ome_zarr_labels"]


def read_ome_zarr(
    path: str | os.PathLike[str], *, image: int = 0, select: Mapping[str, int] | None = None
) -> MultiscaleImage:
    """Open an OME-Zarr image lazily: only JSON metadata is read.

    Handles NGFF 0.5 (zarr v3, ``attrs["ome"]``) and 0.1-0.4 (zarr v2, top-level ``multiscales``),
    and the ``bioformats2raw.layout`` wrapper (opens image ``image`` under it).

    Args:
        path: The ``.zarr`` directory (the image group).
        image: For bioformats2raw layouts, which numbered image to open.
        select: Single planes along extra axes, e.g. ``{"Z": 0}``.

    Returns:
        The image; ``channels`` from ``omero.channels`` (labels and colours), ``pixel_size_um`` from the
        level-0 ``scale`` of the ``y``/``x`` axes (None when the axes carry no unit). Three uint8 channels
        labelled R, G, B (or Red, Green, Blue) are one RGB image (marked: :func:`hyperplex.bio.rgb.is_rgb`).

    Raises:
        DataNotFoundError: If the path does not exist.
        FileFormatError: If it is not a zarr group with NGFF ``multiscales`` metadata.
        ChannelMismatchError: If ``omero.channels`` does not match the channel axis.
    """
    path = Path(path)
    group = _open_group(path)
    try:
        return _read(group, path, image, select)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as err:
        if isinstance(err, HyperplexError):
            raise
        raise FileFormatError(f"{path}: malformed OME-NGFF metadata ({type(err).__name__}: {err}).") from err


def _read(group: Any, path: Path, image: int, select: Mapping[str, int] | None) -> MultiscaleImage:
    """The body of :func:`read_ome_zarr` once the group is open (malformed metadata raises plain errors here)."""
    attrs, version = unwrap_ome(group.attrs.asdict())
    if "multiscales" not in attrs and "bioformats2raw.layout" in attrs:
        group = _member(group, str(image), path, "image (bioformats2raw layout)")
        attrs, version = unwrap_ome(group.attrs.asdict())
    if not attrs.get("multiscales"):
        raise FileFormatError(f"{path}: a zarr group without OME-NGFF 'multiscales' metadata; not an OME-Zarr image.")
    entry = attrs["multiscales"][0]
    version = version or entry.get("version")
    arrays = [_member(group, str(path_of), path, "level array") for path_of in _dataset_paths(entry, path)]
    axes, units = axes_letters(entry, arrays[0].ndim, str(path))
    levels = [to_cyx(_lazy(a, path), axes, source=str(path), select=select)[0] for a in arrays]
    channels = _channels(attrs.get("omero"), levels[0].shape[0])
    meta = {"ngff_version": version, "zarr_format": group.metadata.zarr_format, "axes": axes}
    image = MultiscaleImage(levels, channels, _pixel_size(entry, axes, units, path), path, "ome-zarr", meta)
    return mark_rgb(image) if looks_rgb(channels, image.dtype) else image


def _lazy(array: Any, path: Path) -> da.Array:
    """``da.from_zarr(array)``, but a corrupt chunk's decoding error names the store, the array and the block."""
    from dask.base import tokenize

    name = f"from-zarr-{tokenize(array)}"
    what = f"array '{array.path}'"
    return da.from_array(array, chunks=array.chunks, name=name, getitem=guarded_getter(path, what))


def _dataset_paths(entry: Any, path: Path) -> list[str]:
    """The ``path`` of every dataset (level) a multiscales entry lists."""
    datasets = entry.get("datasets") if isinstance(entry, Mapping) else None
    if not datasets or not all(isinstance(d, Mapping) and "path" in d for d in datasets):
        raise FileFormatError(f"{path}: multiscales lists no datasets with a 'path'; not a valid OME-Zarr.")
    return [str(d["path"]) for d in datasets]


def _member(group: Any, key: str, path: Path, what: str) -> Any:
    """``group[key]``, with a FileFormatError naming the store when the metadata names a missing member."""
    try:
        return group[key]
    except (KeyError, FileNotFoundError, ValueError) as err:
        raise FileFormatError(
            f"{path}: the metadata names {what} {key!r}, which is missing from the store; the store is incomplete."
        ) from err


def _open_group(path: Path) -> Any:
    import zarr

    if not path.exists():
        raise DataNotFoundError(f"{path}: no such file or directory.")
    try:
        return zarr.open_group(path, mode="r")
    except (FileNotFoundError, ValueError, TypeError, KeyError) as err:
        raise FileFormatError(f"{path}: not a zarr group ({err}).") from err


def _channels(omero: Mapping[str, Any] | None, count: int) -> ChannelSet:
    if not omero or not omero.get("channels"):
        return ChannelSet.default(count)
    return channels_from_omero(omero["channels"])


def _pixel_size(
    entry: Mapping[str, Any], axes: str, units: Mapping[str, str | None], path: Path
) -> tuple[float, float] | None:
    if units.get("Y") is None or units.get("X") is None:
        return None
    scale = level_scales(entry, 0, len(axes))
    return (
        to_micrometers(scale[axes.index("Y")], units["Y"], source=str(path)),
        to_micrometers(scale[axes.index("X")], units["X"], source=str(path)),
    )


def read_ome_zarr_labels(path: str | os.PathLike[str]) -> dict[str, list[da.Array]]:
    """The NGFF label images (e.g. cell masks) stored under an OME-Zarr image's ``labels/`` group, lazily.

    Args:
        path: The image's ``.zarr`` directory.

    Returns:
        Label name -> integer dask levels ``(Y, X)``, finest first (empty when the image has no labels).

    Raises:
        DataNotFoundError: If the path does not exist.
        FileFormatError: If a listed label group is missing or not a multiscale image.
    """
    path = Path(path)
    root = _open_group(path)
    if "labels" not in root:
        return {}
    listing, _ = unwrap_ome(root["labels"].attrs.asdict())
    out = {}
    for name in listing.get("labels", []):
        if name not in root["labels"]:
            raise FileFormatError(f"{path}: labels/ lists {name!r} but has no such group.")
        group = root["labels"][name]
        attrs, _ = unwrap_ome(group.attrs.asdict())
        if not attrs.get("multiscales"):
            raise FileFormatError(f"{path}: labels/{name} has no 'multiscales' metadata.")
        entry = attrs["multiscales"][0]
        arrays = [group[d["path"]] for d in entry["datasets"]]
        axes, _ = axes_letters(entry, arrays[0].ndim, f"{path}/labels/{name}")
        out[name] = [to_cyx(_lazy(a, path), axes, source=str(path))[0][0] for a in arrays]
    return out
