"""Input handling shared by the methane filters: band window, validity, chunked row reading, outputs."""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hyperplex.common.arrays import as_channel_first, is_lazy, materialize, unwrap
from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import ChannelMismatchError, InvalidParameterError, NoValidDataError
from hyperplex.geo.methane.target import target_spectrum
from hyperplex.geo.nodata import FILL_VALUE

if TYPE_CHECKING:
    from hyperplex.geo.methane.options import FilterOptions

__all__ = [
    "FILL_VALUE",
    "MIN_BANDS",
    "PreparedCube",
    "prepare_cube",
    "require_valid",
    "without_constant_bands",
    "wrap_output",
]

#: Fewest bands a filter accepts inside its window.
MIN_BANDS = 3
#: Rows sampled first to clear the bands that vary (the constant-band check is then exact on the rest).
SAMPLE_ROWS = 16
#: Bytes of float32 data read per chunk of rows.
CHUNK_BYTES = 16 * 2**20
#: Largest strip of selected bands read along a dask source's own row chunks.
DASK_STRIP_BYTES = 384 * 2**20


@dataclass
class PreparedCube:
    """A validated (C, H, W) cube restricted to the filter's bands.

    Attributes:
        source: Channel-first array (all bands); read through :meth:`rows`.
        bands: Band selection into ``source`` (a slice when contiguous).
        wavelengths: Selected band centres, nm.
        fwhm: Selected band FWHM, nm.
        template: Unit CH4 absorption of the selected bands (x 1e5), float64.
        mask: (H, W) bool, True where the caller excluded pixels; or None.
        fill_value: Value marking missing data.
        stats_mask: (H, W) bool, True where pixels are left out of the statistics only; or None.
        like: The xarray input (for wrapping outputs) or None.
        channel_dim: Name of the xarray channel dimension.
    """

    source: Any
    bands: slice | np.ndarray
    wavelengths: np.ndarray
    fwhm: np.ndarray
    template: np.ndarray
    mask: np.ndarray | None
    fill_value: float | None
    like: Any = None
    channel_dim: str | None = None
    stats_mask: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """Spatial shape (H, W)."""
        return int(self.source.shape[1]), int(self.source.shape[2])

    @property
    def n_bands(self) -> int:
        """Number of selected bands."""
        return int(self.wavelengths.size)

    def row_chunks(self, rows_per_chunk: int | None = None) -> list[tuple[int, int]]:
        """Row ranges covering the cube, each about :data:`CHUNK_BYTES` of float32 data.

        A dask source is read along its own row chunks when each fits in :data:`DASK_STRIP_BYTES`, so
        that no chunk (e.g. a lazy orthorectification block) is computed more than once.
        """
        height, width = self.shape
        aligned = None if rows_per_chunk else self._dask_row_chunks()
        if aligned is not None:
            return aligned
        step = rows_per_chunk or max(1, CHUNK_BYTES // max(1, 4 * self.n_bands * width))
        return [(r, min(r + step, height)) for r in range(0, height, step)]

    def _dask_row_chunks(self) -> list[tuple[int, int]] | None:
        rows = getattr(self.source, "chunks", None)
        if not isinstance(rows, tuple) or len(rows) != 3 or not hasattr(self.source, "dask"):
            return None
        if max(rows[1]) * self.shape[1] * self.n_bands * 4 > DASK_STRIP_BYTES or len(rows[1]) == 1:
            return None
        edges = np.cumsum((0, *rows[1]))
        return [(int(a), int(b)) for a, b in itertools.pairwise(edges)]

    def read(self, r0: int, r1: int) -> np.ndarray:
        """Rows ``r0:r1`` of the selected bands as float32 (C, r1-r0, W) (validity: see ``read_chunk``).

        A view of the source where possible; a copy where it has negative strides (torch cannot wrap those).
        """
        if isinstance(self.bands, slice):
            block = materialize(self.source[self.bands, r0:r1, :], np.float32)
        else:
            block = materialize(_take_bands(self.source, self.bands, r0, r1), np.float32)
        return np.ascontiguousarray(block) if min(block.strides, default=0) < 0 else block

    def in_memory(self) -> PreparedCube:
        """This cube with the selected bands read into a numpy array (no-op for numpy/memmap sources)."""
        if not is_lazy(self.source):
            return self
        data = np.empty((self.n_bands, *self.shape), dtype=np.float32)
        for r0, r1 in self.row_chunks():
            data[:, r0:r1] = self.read(r0, r1)
        return dataclasses.replace(self, source=data, bands=slice(None))

    def gather(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Spectra of the pixels (rows[i], cols[i]) as float32 (n, C); needs an in-memory source."""
        if isinstance(self.bands, slice):
            out = self.source[self.bands][:, rows, cols]
        else:
            out = self.source[self.bands[:, None], rows[None, :], cols[None, :]]
        return np.ascontiguousarray(out.T, dtype=np.float32)


def prepare_cube(
    cube: Any, wavelengths: Any, fwhm: Any, options: FilterOptions, *, template: Any = None
) -> PreparedCube:
    """Validate a filter's inputs and select its bands.

    Args:
        cube: 3-D radiance (numpy, memmap, dask, zarr or xarray DataArray with a wavelength/band dimension).
        wavelengths: Band centres in nm (taken from the DataArray's coordinates when None).
        fwhm: Band FWHM in nm (taken from the DataArray's coordinates when None).
        options: The shared filter options (channel axis, masks, window or bands, fill value).
        template: A unit absorption spectrum (x 1e5) with one value per band of ``cube``, used instead of
            :func:`target_spectrum` (like mag1c's ``--spec``); then ``wavelengths`` and ``fwhm`` may be None
            if ``options.window`` is None.

    Returns:
        The prepared cube.

    Raises:
        ChannelMismatchError: If the band count differs from ``wavelengths``/``fwhm``/``template``.
        InvalidParameterError: For non-finite wavelengths/FWHM, a bad mask or too few bands.
    """
    like, channel_dim, channel_axis = None, None, options.channel_axis
    if hasattr(cube, "dims") and hasattr(cube, "variable"):
        like, (cube, channel_axis, channel_dim, wavelengths, fwhm) = cube, _from_xarray(cube, wavelengths, fwhm)
    source = as_channel_first(cube, channel_axis, name="cube")
    count = int(source.shape[0])
    unit = None if template is None else _template(template, count)
    if unit is not None and wavelengths is None and fwhm is None and options.window is None:
        selection = _select(np.arange(count, dtype=np.float64), None, options.bands)
        wl = fw = np.full(count, np.nan)[selection]
    else:
        channels = _channels(wavelengths, fwhm, count)
        selection = _select(channels.wavelengths, options.window, options.bands)
        wl, fw = channels.wavelengths[selection], channels.fwhm[selection]
    unit = target_spectrum(wl, fw) if unit is None else unit[selection]
    masks = (_mask(options.mask, source.shape[1:], "mask"), _mask(options.stats_mask, source.shape[1:], "stats_mask"))
    prepared = PreparedCube(source, selection, wl, fw, unit, masks[0], options.fill_value, like, channel_dim, masks[1])
    return without_constant_bands(prepared)


def _row_sample(prepared: PreparedCube) -> tuple[np.ndarray, np.ndarray]:
    """Up to :data:`SAMPLE_ROWS` evenly spaced rows of the selected bands: ``(C, pixels)`` float32 and the rows."""
    height = prepared.shape[0]
    rows = np.unique(np.linspace(0, height - 1, min(height, SAMPLE_ROWS)).astype(int))
    sample = np.concatenate([prepared.read(r, r + 1) for r in rows], axis=1).reshape(prepared.n_bands, -1)
    return sample, rows


def _statistics_pixels(spectra: np.ndarray, prepared: PreparedCube) -> np.ndarray:
    """Which of the ``(C, n)`` spectra are valid (finite, not all zero, no fill value), as the filters judge."""
    ok = np.isfinite(spectra).all(0) & (spectra != 0).any(0)
    if prepared.fill_value is not None:
        ok &= (spectra != prepared.fill_value).all(0)
    return ok


def _excluded(prepared: PreparedCube) -> np.ndarray | None:
    """(H, W) pixels left out of the statistics by ``mask`` or ``stats_mask``; None when neither is given."""
    masks = [m for m in (prepared.mask, prepared.stats_mask) if m is not None]
    return None if not masks else np.logical_or.reduce(masks)


def _sample_candidates(prepared: PreparedCube) -> tuple[np.ndarray, np.ndarray]:
    """Bands constant over the statistics pixels of a row sample, and their value there (NaN: no such pixel).

    A band that varies in the sample varies in the data; one that does not is only a candidate.
    """
    sample, rows = _row_sample(prepared)
    ok = _statistics_pixels(sample, prepared)
    excluded = _excluded(prepared)
    if excluded is not None:
        ok &= ~excluded[rows].ravel()
    if not ok.any():
        return np.ones(prepared.n_bands, bool), np.full(prepared.n_bands, np.nan)
    values = sample[:, ok]
    return values.max(1) == values.min(1), values[:, 0].astype(np.float64)


def _varies_somewhere(prepared: PreparedCube, band: int, value: float, excluded: np.ndarray | None) -> bool:
    """Whether a statistics pixel of band ``band`` (in-memory source) differs from ``value``; exact.

    Only pixels whose value differs (and is finite, not fill, not masked) are read in full, a batch at a
    time, until one is a valid spectrum: a dead band costs one comparison of its plane.
    """
    index = np.arange(int(prepared.source.shape[0]))[prepared.bands][band]
    plane = np.asarray(prepared.source[index])
    with np.errstate(invalid="ignore"):
        differ = (plane != value) & np.isfinite(plane)
    if prepared.fill_value is not None:
        differ &= plane != prepared.fill_value
    if excluded is not None:
        differ &= ~excluded
    rows, cols = np.nonzero(differ)
    for start in range(0, rows.size, 4096):
        spectra = prepared.gather(rows[start : start + 4096], cols[start : start + 4096]).T
        if _statistics_pixels(spectra, prepared).any():
            return True
    return False


def _constant_bands(prepared: PreparedCube) -> tuple[np.ndarray, PreparedCube]:
    """Bands constant over every statistics pixel (exact), and the cube (read into memory if it was lazy).

    A row sample clears most bands; the rest are checked on the whole image. A lazy source with such a
    candidate is read once into memory here, and the filter then uses that copy (no second read).
    """
    candidates, values = _sample_candidates(prepared)
    if not candidates.any():
        return candidates, prepared
    prepared = prepared.in_memory()
    excluded = _excluded(prepared)
    if np.isnan(values).any():  # no statistics pixel in the sample: take the first one of the whole image
        values = _first_statistics_spectrum(prepared, excluded)
        if values is None:
            return np.zeros(prepared.n_bands, bool), prepared
    constant = candidates.copy()
    for band in np.flatnonzero(candidates):
        constant[band] = not _varies_somewhere(prepared, int(band), float(values[band]), excluded)
    return constant, prepared


def _first_statistics_spectrum(prepared: PreparedCube, excluded: np.ndarray | None) -> np.ndarray | None:
    """The spectrum of the first statistics pixel in row order (in-memory source), or None if there is none."""
    for r0, r1 in prepared.row_chunks():
        block = prepared.read(r0, r1).reshape(prepared.n_bands, -1)
        ok = _statistics_pixels(block, prepared)
        if excluded is not None:
            ok &= ~excluded[r0:r1].ravel()
        if ok.any():
            return block[:, int(np.argmax(ok))].astype(np.float64)
    return None


def without_constant_bands(prepared: PreparedCube) -> PreparedCube:
    """Leave out bands that are constant over the statistics pixels (a dead or clipped band), with a warning.

    A band without variance makes the covariance singular and the whitened target collapse onto it, which
    flattens a matched filter's whole output; dropped, it costs nothing (it carries no information). The
    check is exact over the pixels the statistics use (valid, not in ``mask`` or ``stats_mask``): a row
    sample clears the bands that vary, and only the remaining ones are compared on the whole image.

    Raises:
        InvalidParameterError: If fewer than :data:`MIN_BANDS` bands are left.
    """
    if prepared.n_bands < 2 or 0 in prepared.shape:
        return prepared
    constant, prepared = _constant_bands(prepared)
    if not constant.any() or constant.all():  # all constant: degenerate data, left to the filter's own checks
        return prepared
    keep = np.flatnonzero(~constant)
    dead = zip(np.flatnonzero(constant), prepared.wavelengths[constant])
    names = ", ".join(f"{w:.1f} nm" if np.isfinite(w) else f"band #{i}" for i, w in dead)
    if keep.size < MIN_BANDS:
        raise InvalidParameterError(f"Only {keep.size} band(s) vary ({names} are constant); the filters need "
                                    f"at least {MIN_BANDS}: check the data or widen `window`.")  # fmt: skip
    warnings.warn(f"{constant.sum()} band(s) are constant over the valid pixels ({names}): left out of the "
                  "filter (a band without variance carries no signal and would flatten the output).",
                  UserWarning, stacklevel=4)  # fmt: skip
    index = np.arange(int(prepared.source.shape[0]))[prepared.bands][keep]
    bands = slice(int(index[0]), int(index[-1]) + 1) if np.all(np.diff(index) == 1) else index
    return dataclasses.replace(prepared, bands=bands, wavelengths=prepared.wavelengths[keep],
                               fwhm=prepared.fwhm[keep], template=prepared.template[keep])  # fmt: skip


#: Attributes of the input that describe its values, not its grid: not carried over to a filter's output.
_VALUE_ATTRS = frozenset(
    {"units", "long_name", "standard_name", "valid_min", "valid_max", "valid_range", "scale_factor", "add_offset"}
    | {"_FillValue", "missing_value", "method", "parameters"}
)


def wrap_output(prepared: PreparedCube, image: np.ndarray, name: str, units: str) -> Any:
    """Return ``image`` (H, W) as is, or as a DataArray shaped like the xarray input minus its band dim.

    The DataArray keeps the input's non-channel coordinates (2-D ``lat``/``lon`` in sensor geometry; ``x``,
    ``y`` and the rioxarray ``spatial_ref`` on a map grid, so ``.rio.to_raster`` writes on the input's grid)
    and its attributes, except those describing the input's values (units, names, scaling).
    """
    if prepared.like is None:
        return image
    import xarray as xr

    like = prepared.like
    spatial = [d for d in like.dims if d != prepared.channel_dim]
    coords = {k: v.variable for k, v in like.coords.items() if set(v.dims) <= set(spatial)}
    attrs = {k: v for k, v in like.attrs.items() if k not in _VALUE_ATTRS}
    attrs |= {"units": units, "long_name": name.replace("_", " ")}
    out = xr.DataArray(image, dims=spatial, coords=coords, name=name, attrs=attrs)
    if "spatial_ref" in out.coords:
        out.encoding["grid_mapping"] = "spatial_ref"
    return out


def _from_xarray(array: Any, wavelengths: Any, fwhm: Any) -> tuple[Any, int, str, Any, Any]:
    channels = ChannelSet.from_xarray(array)
    dim = next(d for d in array.dims if array.sizes[d] == len(channels) and _is_channel_dim(array, d))
    axis = array.dims.index(dim)
    return (
        unwrap(array),
        axis,
        dim,
        channels.wavelengths if wavelengths is None else wavelengths,
        channels.fwhm if fwhm is None else fwhm,
    )


def _is_channel_dim(array: Any, dim: str) -> bool:
    from hyperplex.common.channels import find_channel_dim

    return find_channel_dim(array) == dim


def _channels(wavelengths: Any, fwhm: Any, count: int) -> ChannelSet:
    if wavelengths is None or fwhm is None:
        raise InvalidParameterError(
            "`wavelengths` and `fwhm` (nm) are required: pass them or use a DataArray "
            "whose band dimension has `wavelength` and `fwhm` coordinates."
        )
    wl = np.asarray(wavelengths, dtype=np.float64).ravel()
    fw = np.asarray(fwhm, dtype=np.float64).ravel()
    if wl.size != count or fw.size != count:
        raise ChannelMismatchError(
            f"`cube` has {count} bands but `wavelengths` has {wl.size} and `fwhm` {fw.size} values; "
            "pass one value per band (check `channel_axis`)."
        )
    if not (np.isfinite(wl).all() and np.isfinite(fw).all() and (fw > 0).all()):
        raise InvalidParameterError("`wavelengths` and `fwhm` must be finite (nm), and `fwhm` positive.")
    values, counts = np.unique(wl, return_counts=True)
    if (counts > 1).any():
        raise InvalidParameterError(
            f"`wavelengths` repeat ({', '.join(f'{v:g}' for v in values[counts > 1][:5])} nm); "
            "give each band its own centre wavelength."
        )
    return ChannelSet.from_wavelengths(wl, fw)


def _select(wavelengths: np.ndarray, window: tuple[float, float] | None, bands: Any) -> slice | np.ndarray:
    if bands is not None:
        index = np.unique(np.asarray(bands, dtype=np.int64))
        if index.size and (index.min() < 0 or index.max() >= wavelengths.size):
            raise InvalidParameterError(f"`bands` must index the cube's {wavelengths.size} bands.")
        where = f"`bands` ({index.size} given)"
    elif window is None:
        index = np.arange(wavelengths.size)
        where = "the cube"
    else:
        lo, hi = float(window[0]), float(window[1])
        index = np.flatnonzero((wavelengths >= lo) & (wavelengths <= hi))
        where = f"the window {lo:g}-{hi:g} nm"
    if index.size < MIN_BANDS:
        raise InvalidParameterError(
            f"{where} holds {index.size} band(s); the filters need at least {MIN_BANDS}. "
            f"The cube covers {wavelengths.min():.1f}-{wavelengths.max():.1f} nm: widen `window` or pass `bands`."
        )
    if np.all(np.diff(index) == 1):
        return slice(int(index[0]), int(index[-1]) + 1)
    return index


def _mask(mask: Any, shape: tuple[int, int], name: str) -> np.ndarray | None:
    if mask is None:
        return None
    array = materialize(mask).astype(bool, copy=False)
    if array.shape != tuple(shape):
        raise InvalidParameterError(f"`{name}` must have the cube's spatial shape {tuple(shape)}; got {array.shape}.")
    return array


def _template(template: Any, count: int) -> np.ndarray:
    unit = np.asarray(template, dtype=np.float64).ravel()
    if unit.size != count:
        raise ChannelMismatchError(f"`cube` has {count} bands but the template has {unit.size} values.")
    if not np.isfinite(unit).all():
        raise InvalidParameterError("The template (unit absorption spectrum) must be finite.")
    return unit


def _take_bands(source: Any, bands: np.ndarray, r0: int, r1: int) -> Any:
    if isinstance(source, np.ndarray) or hasattr(source, "dask"):
        return source[bands, r0:r1, :]
    return materialize(source[:, r0:r1, :])[bands]


def require_valid(count: int, what: str = "cube") -> None:
    """Raise :class:`NoValidDataError` when no pixel is left for the statistics."""
    if count == 0:
        raise NoValidDataError(
            f"The {what} has no valid pixel for the statistics: every pixel is fill (-9999), non-finite, "
            "all-zero, masked or in `stats_mask`."
        )
