"""Plain TIFF stacks: one multi-page file (pages = channels) or several single-channel files."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dask.array as da

from hyperplex.bio._tiff import open_tiff, series_levels
from hyperplex.bio.axes import to_cyx
from hyperplex.bio.rgb import RGB_CHANNELS, mark_rgb
from hyperplex.bio.units import to_micrometers
from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import ChannelMismatchError, DataNotFoundError, InvalidParameterError
from hyperplex.common.image import MultiscaleImage

__all__ = ["read_tiff_stack"]

_TIFF_SUFFIXES = (".tif", ".tiff")
_RESUNIT_UM = {3: 1e4, 4: 1e3, 5: 1.0}  # TIFF ResolutionUnit CENTIMETER, MILLIMETER, MICROMETER -> µm per unit


def read_tiff_stack(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    channels: Any = None,
    select: Mapping[str, int] | None = None,
) -> MultiscaleImage:
    """Open a plain (non-OME) TIFF stack lazily.

    One file: its pages (or ImageJ channels, or RGB samples: then the image is marked RGB) are the
    channels; names come from ImageJ ``Labels`` or the pages' ``PageName`` tags when present. A
    directory or a list of files: one single-channel image per file, in sorted (directory) or given
    order, named by file stem.

    Args:
        path: A TIFF file, a directory of TIFF files, or a sequence of TIFF files.
        channels: Channel names or a ChannelSet to use instead of what the file says.
        select: Single planes along extra axes, e.g. ``{"T": 0}`` for an ImageJ time series.

    Returns:
        The image (format ``"tiff-stack"``). Whole-slide TIFFs that tifffile understands (Aperio SVS, NDPI,
        plain pyramids) come with all their levels. Pixel size comes from Aperio ``MPP``, ImageJ ``unit``
        plus X/YResolution, or a metric TIFF ResolutionUnit; inch-based resolutions (screen dpi) are ignored.

    Raises:
        DataNotFoundError: If a file or directory does not exist or a directory holds no TIFF.
        FileFormatError: If a file is not a TIFF or has an unsupported layout.
        ChannelMismatchError: If ``channels`` or the files disagree with the pixel data.
    """
    if isinstance(path, (str, os.PathLike)) and not Path(path).is_dir():
        image = _read_one(Path(path), select)
    else:
        image = _read_many(_file_list(path), select)
    if channels is not None:
        image.channels = ChannelSet.coerce(channels, count=image.shape[0])
    return image


def _file_list(path: Any) -> list[Path]:
    if isinstance(path, (str, os.PathLike)):
        folder = Path(path)
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _TIFF_SUFFIXES and p.is_file())
        if not files:
            raise DataNotFoundError(f"{folder}: the directory holds no .tif/.tiff files.")
        return files
    files = [Path(p) for p in path]
    if not files:
        raise InvalidParameterError("read_tiff_stack: the list of files is empty.")
    return files


def _read_one(path: Path, select: Mapping[str, int] | None) -> MultiscaleImage:
    tif = open_tiff(path)
    try:
        levels, axes = series_levels(tif, 0, path)
        cyx, chan = zip(*(to_cyx(lvl, axes, source=str(path), select=select, strict=False) for lvl in levels))
        channels = _channels(tif, cyx[0].shape[0], chan[0])
        image = MultiscaleImage(list(cyx), channels, _pixel_size(tif), path, "tiff-stack", {"axes": axes})
    except BaseException:
        tif.close()
        raise
    if chan[0] == "S" and image.count == 3:  # interleaved RGB samples: one colour image
        mark_rgb(image)
    image._closers.append(tif.close)
    return image


def _read_many(files: list[Path], select: Mapping[str, int] | None) -> MultiscaleImage:
    planes, closers, size = [], [], None
    for file in files:
        one = _read_one(file, select)
        closers += one._closers
        if one.shape[0] != 1:
            raise ChannelMismatchError(f"{file}: holds {one.shape[0]} channels; a multi-file stack needs one per file.")
        if planes and one.shape[1:] != planes[0].shape[1:]:
            raise ChannelMismatchError(f"{file}: size {one.shape[1:]} differs from {files[0]}: {planes[0].shape[1:]}.")
        planes.append(one.levels[0])
        size = size or one.pixel_size_um
    stack = da.concatenate(planes, axis=0)
    names = ChannelSet.from_names([f.name.split(".")[0] for f in files])
    image = MultiscaleImage([stack], names, size, files[0].parent, "tiff-stack", {"files": [str(f) for f in files]})
    image._closers += closers
    return image


def _channels(tif: Any, count: int, channel_axes: str) -> ChannelSet:
    names = _page_names(tif, count)
    if names:
        return ChannelSet.from_names(names)
    if channel_axes == "S" and count == 3:  # plain RGB (e.g. a bright-field / H&E snapshot)
        return RGB_CHANNELS
    return ChannelSet.default(count)


def _page_names(tif: Any, count: int) -> list[str] | None:
    labels = (tif.imagej_metadata or {}).get("Labels") if tif.is_imagej else None
    if labels and len(labels) == count:
        return [str(n) for n in labels]
    pages = tif.pages[:count] if len(tif.pages) >= count else []
    names = [page.tags.get("PageName") if hasattr(page, "tags") else None for page in pages]  # frames: no tags
    if names and all(tag is not None for tag in names):
        return [str(tag.value) for tag in names]
    return None


def _pixel_size(tif: Any) -> tuple[float, float] | None:
    page = tif.pages.first
    mpp = re.search(r"\|\s*MPP\s*=\s*([0-9.]+)", page.description or "") if tif.is_svs else None
    if mpp:  # Aperio whole-slide images state microns per pixel in the description
        return (float(mpp.group(1)), float(mpp.group(1)))
    xres, yres = page.tags.get("XResolution"), page.tags.get("YResolution")
    if xres is None or yres is None:
        return None
    per_unit = [num / den if den else 0.0 for num, den in (yres.value, xres.value)]
    if min(per_unit) <= 0:
        return None
    unit = (tif.imagej_metadata or {}).get("unit") if tif.is_imagej else None
    if unit:
        try:
            return tuple(to_micrometers(1.0 / p, _imagej_unit(unit), source=tif.filename) for p in per_unit)
        except InvalidParameterError:
            return None
    scale = _RESUNIT_UM.get(int(page.tags.get("ResolutionUnit").value) if "ResolutionUnit" in page.tags else 2)
    return None if scale is None else (scale / per_unit[0], scale / per_unit[1])


def _imagej_unit(unit: str) -> str:
    return str(unit).replace("\\u00B5", "µ").replace("\\u00b5", "µ")  # ImageJ writes µ as a literal escape
