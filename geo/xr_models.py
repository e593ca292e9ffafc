"""Models on xarray: embeddings and dense predictions that keep the input's grid, coordinates and CRS.

:func:`embed` and :func:`predict` wrap the tiled inference of :mod:`hyperplex.common.models.inference`
for a channel-first DataArray (channel identity from its coordinates, as the filters read it). Dense
predictions stay on the input grid with every non-channel coordinate. Embeddings are on the model's
feature grid (every ``feature_stride`` pixels): 1-D coordinates are interpolated to the centres of the
feature cells, 2-D ones (``lat``/``lon`` in sensor geometry) sampled there bilinearly, and a rioxarray
CRS is kept with the transform scaled by the stride, so ``.rio.to_raster`` places the features correctly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from hyperplex.common.channels import ChannelSet, find_channel_dim
from hyperplex.common.errors import InvalidParameterError

if TYPE_CHECKING:
    import xarray as xr

    from hyperplex.common.models import HyperplexModel

__all__ = ["embed", "predict"]

#: Input attributes that describe the input's values and are not carried over.
_VALUE_ATTRS = ("units", "long_name", "standard_name", "scale_factor", "add_offset", "_FillValue", "valid_range")


def _channel_first(cube: xr.DataArray) -> tuple[xr.DataArray, ChannelSet]:
    dim = find_channel_dim(cube)
    ordered = cube.transpose(dim, ...)
    if ordered.ndim != 3:
        raise InvalidParameterError(f"`cube` must be 3-D (channels, rows, cols); got dims {cube.dims}.")
    return ordered, ChannelSet.from_xarray(ordered, dim)


def _attrs(cube: xr.DataArray, model: HyperplexModel, **extra: Any) -> dict[str, Any]:
    attrs = {k: v for k, v in cube.attrs.items() if k not in _VALUE_ATTRS}
    return attrs | {"model": type(model).__name__, **extra}


def _centres(size: int, stride: int) -> np.ndarray:
    """Pixel positions (fractional) of the centres of the feature cells along an axis of ``size`` pixels."""
    return np.minimum(stride * np.arange(-(-size // stride)) + (stride - 1) / 2.0, size - 1)


def _feature_coords(cube: xr.DataArray, stride: int) -> dict[str, Any]:
    """The cube's spatial coordinates on the feature grid (interpolated at the feature-cell centres)."""
    from scipy import ndimage

    ydim, xdim = cube.dims[1:]
    rows, cols = _centres(cube.sizes[ydim], stride), _centres(cube.sizes[xdim], stride)
    out: dict[str, Any] = {}
    for name, coord in cube.coords.items():
        if coord.dims in ((ydim,), (xdim,)) and np.issubdtype(coord.dtype, np.number):
            where = rows if coord.dims == (ydim,) else cols
            out[name] = (coord.dims, np.interp(where, np.arange(coord.size), np.asarray(coord.values, float)))
        elif coord.dims == (ydim, xdim) and np.issubdtype(coord.dtype, np.number):
            grid = np.meshgrid(rows, cols, indexing="ij")
            out[name] = (coord.dims, ndimage.map_coordinates(np.asarray(coord.values, float), grid, order=1))
        elif coord.dims == ():
            out[name] = coord.variable
    return out


def _with_crs(out: xr.DataArray, cube: xr.DataArray, stride: int) -> xr.DataArray:
    """Write the cube's CRS and its transform scaled by ``stride`` (no-op when the cube has no map grid)."""
    import rioxarray  # noqa: F401  (registers the .rio accessor)
    from affine import Affine

    try:
        crs, transform = cube.rio.crs, cube.rio.transform(recalc=False)
    except Exception:  # not on a map grid (e.g. an EMIT swath): coordinates only
        return out
    if crs is None:
        return out
    return out.rio.write_crs(crs).rio.write_transform(transform @ Affine.scale(stride))


def embed(model: HyperplexModel, cube: xr.DataArray, *, tile_size: int = 256, overlap: int = 32,
          **options: Any) -> xr.DataArray:  # fmt: skip
    """Dense features of a DataArray on the model's feature grid, with the cube's coordinates and CRS.

    Args:
        model: Any hyperplex model.
        cube: A DataArray with a channel dimension (``band``, ``wavelength``, ``channel``, ...) whose
            coordinates give the channels (wavelengths in nm, or marker names), and two spatial dims.
        tile_size: Tile side in pixels (see :func:`~hyperplex.common.models.inference.tiled_feature_map`).
        overlap: Pixels shared by neighbouring tiles.
        **options: Further options of ``tiled_feature_map`` (``transform``, ``normalize``, ``device``).

    Returns:
        float32 ``(feature, y', x')`` DataArray; ``y'``/``x'`` are the cube's spatial dims at ``1/stride``
        resolution with their coordinates at the feature-cell centres.

    Raises:
        ChannelMismatchError: If the cube has no channel dimension or the model cannot take its channels.
    """
    import xarray as xr

    from hyperplex.common.models.inference import tiled_feature_map

    ordered, channels = _channel_first(cube)
    features = tiled_feature_map(model, ordered.data, channels, tile_size=tile_size, overlap=overlap, **options)
    stride = int(model.feature_stride)
    coords = _feature_coords(ordered, stride)
    attrs = _attrs(cube, model, feature_stride=stride)
    out = xr.DataArray(features, dims=("feature", *ordered.dims[1:]), coords=coords, name="features", attrs=attrs)
    return _with_crs(out, ordered, stride)


def predict(model: HyperplexModel, cube: xr.DataArray, *, tile_size: int = 256, overlap: int = 32,
            **options: Any) -> xr.DataArray:  # fmt: skip
    """Dense predictions (segmentation logits, predicted channels) on the cube's own grid.

    Args:
        model: A hyperplex model whose ``forward`` gives ``(B, K, H, W)`` maps.
        cube: A DataArray with a channel dimension and two spatial dims (see :func:`embed`).
        tile_size: Tile side in pixels.
        overlap: Pixels shared by neighbouring tiles.
        **options: Further options of :func:`~hyperplex.common.models.inference.tiled_predict`.

    Returns:
        float32 ``(output, y, x)`` DataArray with every non-channel coordinate and the CRS of ``cube``;
        ``output`` is labelled by the model's output channel names when it has them.
    """
    import xarray as xr

    from hyperplex.common.models.inference import tiled_predict

    ordered, channels = _channel_first(cube)
    values = tiled_predict(model, ordered.data, channels, tile_size=tile_size, overlap=overlap, **options)
    spatial = ordered.dims[1:]
    coords = {k: v.variable for k, v in ordered.coords.items() if set(v.dims) <= set(spatial)}
    names = getattr(model, "output_channels", None)
    if names is not None and len(names) == values.shape[0]:
        coords["output"] = list(names.names)
    out = xr.DataArray(values, dims=("output", *spatial), coords=coords, name="prediction", attrs=_attrs(cube, model))
    return _with_crs(out, ordered, 1)
