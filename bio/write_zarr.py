"""OME-Zarr writer: NGFF 0.5 on zarr v3 (default) or NGFF 0.4 on zarr v2; chunked, multiscale, labelled."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np

from hyperplex.bio._source import prepare
from hyperplex.bio.ngff import build_multiscales, ome_attrs, omero_channels
from hyperplex.bio.pyramid import pyramid
from hyperplex.common.atomic import atomic_path
from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import InvalidParameterError
from hyperplex.common.image import level_factor
from hyperplex.common.progress import progress

__all__ = ["write_ome_zarr"]


def write_ome_zarr(
    path: str | os.PathLike[str],
    data: Any,
    channels: Any = None,
    pixel_size_um: float | tuple[float, float] | None = None,
    *,
    levels: int | None = None,
    chunks: int = 256,
    shards: int | None = None,
    ngff_version: str = "0.5",
    labels: Mapping[str, Any] | None = None,
    name: str | None = None,
    downsample: str = "mean",
) -> Path:
    """Write a multiscale OME-Zarr image (axes ``c, y, x``) with ``omero`` channel labels and colours.

    Each level is a zarr array ``"0", "1", ...`` chunked ``(1, chunks, chunks)``, zstd-compressed,
    with ``scale`` transforms in micrometres. Label images (e.g. cell masks) go under ``labels/`` as
    NGFF image-label multiscales (nearest-neighbour pyramids). The store appears atomically.

    Args:
        path: Destination directory (``.ome.zarr``).
        data: ``(C, Y, X)`` array (numpy, dask, zarr, xarray) or a :class:`MultiscaleImage`.
        channels: Names or a ChannelSet (default: from ``data`` if it has them, else ``c0..``).
        pixel_size_um: Pixel size in µm, one number or ``(y, x)``.
        levels: Number of levels including full resolution (None: automatic, or a MultiscaleImage's own).
        chunks: Spatial chunk edge in pixels.
        shards: NGFF 0.5 only: spatial shard edge (a multiple of ``chunks``); many chunks then share one
            file, which keeps object counts low on cloud storage while reads stay chunk-sized.
        ngff_version: ``"0.5"`` (zarr v3) or ``"0.4"`` (zarr v2, ``/`` chunk keys).
        labels: Optional ``{name: (Y, X) integer array}`` label images of the same size.
        name: Image name in the metadata (default: the file stem).
        downsample: ``"mean"`` for intensities, ``"nearest"`` for label-like data.

    Returns:
        The path written.

    Raises:
        InvalidParameterError: If the version, chunk size or a label image is invalid.
        ChannelMismatchError: If ``channels`` does not match the channel count.
    """
    import zarr

    _check_chunking(chunks, shards, ngff_version)
    lvls, chans, size = prepare(data, channels, pixel_size_um, levels, downsample)
    image_name = name or Path(path).name.split(".")[0]
    zarr_format = 3 if ngff_version == "0.5" else 2
    with atomic_path(path) as tmp:
        root = zarr.open_group(tmp, mode="w", zarr_format=zarr_format)
        _write_levels(root, lvls, "cyx", (chunks, shards), zarr_format)
        # display windows from the smallest level as written (never recomputes a lazy pyramid)
        smallest = da.from_zarr(root[str(len(lvls) - 1)])
        content = _image_content(lvls, chans, size, image_name, ngff_version, _windows(smallest))
        root.attrs.update(ome_attrs(content, ngff_version))
        if labels:
            _write_labels(root, labels, lvls[0].shape[1:], len(lvls), size, (chunks, shards), ngff_version)
    return Path(path)


def _image_content(
    lvls: list[da.Array],
    chans: ChannelSet,
    size: tuple[float, float] | None,
    name: str,
    version: str,
    windows: list[tuple[float, float]],
) -> dict[str, Any]:
    factors = [
        (level_factor(lvls[0].shape[1], lvl.shape[1]), level_factor(lvls[0].shape[2], lvl.shape[2])) for lvl in lvls
    ]
    multiscales = build_multiscales(name, "cyx", [str(i) for i in range(len(lvls))], factors, size, version)
    omero = {"name": name, "channels": omero_channels(chans, windows), "rdefs": {"model": "color"}}
    if version == "0.4":
        omero["version"] = "0.4"
    return {"multiscales": [multiscales], "omero": omero}


def _windows(smallest: da.Array) -> list[tuple[float, float]]:
    """Display window per channel: 0.1-99.9 percentiles of the smallest level (cheap to compute)."""
    arr = np.asarray(smallest.compute(), dtype=np.float64).reshape(smallest.shape[0], -1)
    lo, hi = np.percentile(arr, [0.1, 99.9], axis=1) if arr.size else (np.zeros(len(arr)), np.ones(len(arr)))
    return [(float(a), float(b if b > a else a + 1)) for a, b in zip(lo, hi)]


def _check_chunking(chunks: int, shards: int | None, version: str) -> None:
    if chunks <= 0:
        raise InvalidParameterError(f"`chunks` must be positive; got {chunks}.")
    if shards is not None and (version != "0.5" or shards <= 0 or shards % chunks):
        raise InvalidParameterError(
            f"`shards` ({shards}) needs ngff_version='0.5' (zarr v3) and a positive multiple of `chunks` ({chunks})."
        )


def _write_levels(
    group: Any, lvls: list[da.Array], axes: str, chunking: tuple[int, int | None], zarr_format: int
) -> None:
    import zarr

    for index, lvl in enumerate(progress(lvls, desc="write levels", unit="level")):
        options, blocks = _array_options(lvl.shape, axes, chunking, zarr_format)
        name = str(index) if not group.path else f"{group.path}/{index}"
        target = zarr.create_array(group.store, name=name, shape=lvl.shape, dtype=lvl.dtype, **options)
        da.store(lvl.rechunk(blocks), target, lock=False)


def _array_options(
    shape: tuple[int, ...], axes: str, chunking: tuple[int, int | None], zarr_format: int
) -> tuple[dict[str, Any], tuple[int, ...]]:
    """Zarr ``create_array`` options for one level, and the block shape dask should write in."""
    chunks, shards = chunking
    shape_chunks = tuple(1 if a == "c" else min(chunks, n) for a, n in zip(axes, shape))
    options: dict[str, Any] = {"chunks": shape_chunks, "zarr_format": zarr_format}
    options["compressors"] = [_compressor(zarr_format)]
    blocks = shape_chunks
    if shards is not None:
        # a shard holds whole chunks; dask then writes whole shards, so no two tasks touch the same object
        blocks = tuple(1 if a == "c" else min(shards, -(-n // c) * c) for a, n, c in zip(axes, shape, shape_chunks))
        options["shards"] = blocks
    if zarr_format == 3:
        options["dimension_names"] = tuple(axes)
    else:
        options["chunk_key_encoding"] = {"name": "v2", "separator": "/"}
    return options, blocks


def _compressor(zarr_format: int) -> Any:
    if zarr_format == 3:
        from zarr.codecs import ZstdCodec

        return ZstdCodec(level=3)
    from numcodecs import Zstd

    return Zstd(level=3)


def _write_labels(
    root: Any,
    labels: Mapping[str, Any],
    shape: tuple[int, int],
    count: int,
    size: Any,
    chunking: tuple[int, int | None],
    version: str,
) -> None:
    group = root.create_group("labels")
    group.attrs.update(ome_attrs({"labels": list(labels)}, version))
    factors = [(2.0**i, 2.0**i) for i in range(count)]
    for key, mask in labels.items():
        arr = da.asarray(mask)
        if arr.shape != tuple(shape) or not np.issubdtype(arr.dtype, np.integer):
            raise InvalidParameterError(
                f"Label image {key!r} must be an integer array of shape {shape}; got {arr.dtype} {arr.shape}."
            )
        lvls = [lvl[0] for lvl in pyramid(arr[None], count, "nearest")]
        sub = group.create_group(key)
        _write_levels(sub, lvls, "yx", chunking, root.metadata.zarr_format)
        content = {
            "multiscales": [build_multiscales(key, "yx", [str(i) for i in range(count)], factors, size, version)],
            "image-label": {"source": {"image": "../../"}, **({"version": "0.4"} if version == "0.4" else {})},
        }
        sub.attrs.update(ome_attrs(content, version))
