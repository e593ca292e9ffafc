"""The EMIT reader: NASA EMIT L1B radiance (and L2A reflectance) NetCDF granules.

The granule stores ``radiance`` as (downtrack, crosstrack, bands) with fill -9999, band centres in
``sensor_band_parameters`` and the geolocation plus the GLT (1-based; 0 = no data) in ``location``.
``geotransform`` and ``spatial_ref`` describe only the orthorectified (GLT) grid.

Two views of the same layout share one set of checks: :func:`open_emit`, a lazy xarray Dataset for
exploration, and :func:`read_emit_geometry` plus :class:`EmitReader` (:func:`read_emit_block` for one
block), which read the GLT once and then blocks of lines of a band subset straight from HDF5 (the
detection pipeline's path). Whatever the band subset, every stored chunk is read and decompressed once.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hyperplex.common.arrays import index_slice, run_spans, runs
from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import DataNotFoundError, FileFormatError, HyperplexError, InvalidParameterError
from hyperplex.common.formats import HDF5_MAGIC, read_head
from hyperplex.common.lazyread import guarded_getter, read_failures
from hyperplex.geo.io.emit_raw import ContiguousRows
from hyperplex.geo.io.hdf5_chunks import DEFLATE, SHUFFLE, StoredChunks, byte_planes, decode_chunk, unshuffle_into
from hyperplex.geo.io.validate import check_band_order
from hyperplex.geo.nodata import FILL_VALUE

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "EmitGeometry",
    "EmitReader",
    "band_spans",
    "emit_channels",
    "emit_cube",
    "emit_data_shape",
    "is_emit",
    "open_emit",
    "ortho_coords",
    "read_emit_block",
    "read_emit_geometry",
    "require_glt",
]

_DATA_VARS = ("radiance", "reflectance")
_SUFFIXES = (".nc", ".nc4", ".h5")
_MAX_CACHE = 512 << 20
#: Bands and lines per block of :func:`emit_cube` (32 x 64 x 1242 float32: 10 MB).
_LAZY_BANDS, _LAZY_LINES = 32, 64


@dataclass(frozen=True)
class EmitGeometry:
    """Where an EMIT granule's pixels are: sizes, GLT, geolocation and the ortho grid.

    Attributes:
        variable: The data variable, ``"radiance"`` or ``"reflectance"``.
        shape: ``(downtrack, crosstrack)`` of the swath (sensor geometry).
        bands: Number of bands.
        glt: ``(glt_x, glt_y)``, 1-based, 0 = no data, on the ortho grid.
        crs: CRS of the ortho grid (WKT); EPSG:4326 when the file does not say.
        transform: GDAL geotransform of the ortho grid, None when the file has none.
        lat: Pixel latitudes in sensor geometry, None when absent or not asked for.
        lon: Pixel longitudes in sensor geometry, None when absent or not asked for.
    """

    variable: str
    shape: tuple[int, int]
    bands: int
    glt: tuple[np.ndarray, np.ndarray]
    crs: str
    transform: tuple[float, ...] | None
    lat: np.ndarray | None = None
    lon: np.ndarray | None = None


def _reports_damage(read: Callable[..., Any]) -> Callable[..., Any]:
    """A reader whose damaged-HDF5 errors (bad object headers, metadata checksums) name the file."""

    @functools.wraps(read)
    def checked(path: str | Path, *args: Any, **kwargs: Any) -> Any:
        try:
            return read(path, *args, **kwargs)
        except (OSError, RuntimeError, KeyError, ValueError) as err:
            if isinstance(err, HyperplexError):
                raise
            raise FileFormatError(f"{path}: damaged NetCDF4/HDF5 structure ({type(err).__name__}: {err}); "
                                  "download the granule again.") from err  # fmt: skip

    return checked


def _require_file(path: Path) -> None:
    if not path.exists():
        raise DataNotFoundError(f"{path}: no such file; check the path (EMIT granules end in .nc).")
    if path.is_dir():
        raise FileFormatError(f"{path} is a directory; pass an EMIT NetCDF file.")


def _open_hdf5(path: Path) -> Any:
    """The granule opened read-only with h5py (an ``h5py.File``: use it as a context manager).

    Raises:
        DataNotFoundError: If the file does not exist.
        FileFormatError: If it is a directory or not HDF5.
    """
    import h5py

    _require_file(path)
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise FileFormatError(f"{path}: cannot read it as NetCDF4/HDF5 ({err}); is this an EMIT granule?") from err


def is_emit(path: str | Path) -> bool:
    """True if ``path`` is an EMIT NetCDF granule (HDF5 with radiance/reflectance and band parameters). Never raises."""
    p = Path(path)
    if p.suffix.lower() not in _SUFFIXES or read_head(p, len(HDF5_MAGIC)) != HDF5_MAGIC:
        return False
    try:
        import h5py

        with h5py.File(p, "r") as f:
            return any(getattr(f.get(v), "ndim", 0) == 3 for v in _DATA_VARS) and "sensor_band_parameters" in f
    except (OSError, ValueError):
        return False


def _open_group(path: Path, group: str | None, chunks: Any) -> xr.Dataset:
    """One group as xarray; with ``chunks``, dask blocks whose read errors name the file (a corrupt chunk)."""
    import xarray as xr

    what = f"group {group!r}" if group else "a variable"
    guard = {} if chunks is None else {"from_array_kwargs": {"getitem": guarded_getter(path, what)}}
    try:
        return xr.open_dataset(path, engine="h5netcdf", group=group, chunks=chunks, mask_and_scale=True, **guard)
    except OSError as err:
        where = f"group '{group}'" if group else "root"
        raise FileFormatError(f"{path}: cannot read {where} as NetCDF4/HDF5 ({err}); is this an EMIT granule?") from err


def _cf_values(variable: Any) -> np.ndarray:
    """An HDF5 variable's values as the CF conventions mean them: ``_FillValue`` as NaN, scale and offset applied."""
    values = np.asarray(variable[...])
    attrs = variable.attrs
    fill = attrs.get("_FillValue")
    if "scale_factor" in attrs or "add_offset" in attrs or (fill is not None and values.dtype.kind in "fiu"):
        missing = values == np.asarray(fill).ravel()[0] if fill is not None else np.zeros(values.shape, bool)
        scale = float(np.asarray(attrs.get("scale_factor", 1.0)).ravel()[0])
        offset = float(np.asarray(attrs.get("add_offset", 0.0)).ravel()[0])
        values = np.where(missing, np.nan, values * scale + offset)
    return values


@_reports_damage
def emit_channels(path: str | Path) -> ChannelSet:
    """Band centres, FWHM and (where present) good-band flags of an EMIT granule.

    Read with h5py (CF masking and scaling applied, as xarray would): opening the band table does not
    import xarray, which the detection pipeline does not otherwise need.

    Raises:
        FileFormatError: If the ``sensor_band_parameters`` group or its variables are missing.
    """
    p = Path(path)
    with _open_hdf5(p) as f:
        if "sensor_band_parameters" not in f:
            raise FileFormatError(f"{p}: no group 'sensor_band_parameters'; not an EMIT L1B/L2A granule.")
        sbp = f["sensor_band_parameters"]  # a damaged header raises here: named by _reports_damage
        missing = [v for v in ("wavelengths", "fwhm") if v not in sbp]
        if missing:
            raise FileFormatError(f"{p}: group 'sensor_band_parameters' lacks {missing}; not an EMIT L1B/L2A granule.")
        wavelengths, fwhm = _cf_values(sbp["wavelengths"]), _cf_values(sbp["fwhm"])
        good = _cf_values(sbp["good_wavelengths"]).astype(bool) if "good_wavelengths" in sbp else None
    try:
        channels = ChannelSet.from_wavelengths(wavelengths, fwhm, good=good)
    except ValueError as err:
        raise FileFormatError(f"{p}: bad 'sensor_band_parameters' ({err}).") from err
    return check_band_order(channels, p)


def ortho_coords(geotransform: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre latitudes (rows) and longitudes (cols) of the GLT grid."""
    gt = np.asarray(geotransform, dtype=np.float64)
    lat = gt[3] + (np.arange(shape[0]) + 0.5) * gt[5]
    lon = gt[0] + (np.arange(shape[1]) + 0.5) * gt[1]
    return lat, lon


def _glt_values(dataset: Any) -> np.ndarray:
    """A GLT variable as int32 (int64 past 2**31): ``_FillValue`` and NaN become 0 (no data), negatives positive.

    Negative entries mark repeated pixels (ENVI). EMIT stores int32: kept so, the georeferencing gathers
    with half the memory traffic of int64.
    """
    values = np.asarray(dataset[...])
    fill = dataset.attrs.get("_FillValue")
    bad = ~np.isfinite(values) if values.dtype.kind == "f" else np.zeros(values.shape, bool)
    if fill is not None:
        bad |= values == np.asarray(fill).ravel()[0]
    values = np.abs(np.where(bad, 0, values))
    wide = values.size and values.max() >= np.iinfo(np.int32).max
    return values.astype(np.int64 if wide else np.int32, copy=False)


def _text_attr(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else None if value is None else str(value)


def _data_variable(f: Any, path: Path) -> str:
    for name in _DATA_VARS:
        if getattr(f.get(name), "ndim", 0) == 3:
            return name
    raise FileFormatError(f"{path}: no 3-D 'radiance' or 'reflectance' variable at the root; not an EMIT granule.")


def _data_shape(f: Any, path: Path) -> tuple[str, tuple[int, int, int]]:
    """The data variable's name and ``(lines, samples, bands)``."""
    name = _data_variable(f, path)
    lines, samples, bands = (int(s) for s in f[name].shape)
    return name, (lines, samples, bands)


@_reports_damage
def emit_data_shape(path: str | Path) -> tuple[str, tuple[int, int, int]]:
    """The data variable's name (``radiance`` or ``reflectance``) and ``(lines, samples, bands)``, reading no data.

    Raises:
        DataNotFoundError: If the file does not exist.
        FileFormatError: If it is not HDF5 or has no 3-D data variable.
    """
    p = Path(path)
    with _open_hdf5(p) as f:
        return _data_shape(f, p)


@_reports_damage
def read_emit_geometry(path: str | Path, *, geolocation: bool = True) -> EmitGeometry:
    """Read an EMIT granule's layout, GLT and (optionally) per-pixel latitude/longitude, but no pixel values.

    Args:
        path: The granule.
        geolocation: Also read ``location/lat`` and ``location/lon`` (two swath-sized arrays).

    Returns:
        The geometry.

    Raises:
        DataNotFoundError: If the file does not exist.
        FileFormatError: If the data variable or ``location/glt_x``/``glt_y`` are missing.
    """
    p = Path(path)
    with _open_hdf5(p) as f:
        name, (lines, samples, bands) = _data_shape(f, p)
        shape = (lines, samples)
        loc = f.get("location", {})
        missing = [v for v in ("glt_x", "glt_y") if v not in loc]
        if missing:
            raise FileFormatError(f"{p}: group 'location' lacks {missing}; cannot orthorectify this granule.")
        glt = (_glt_values(loc["glt_x"]), _glt_values(loc["glt_y"]))
        _check_glt_range(glt, shape, p)
        lat = loc["lat"][...] if geolocation and "lat" in loc else None
        lon = loc["lon"][...] if geolocation and "lon" in loc else None
        crs = _text_attr(f.attrs.get("spatial_ref")) or "EPSG:4326"
        gt = f.attrs.get("geotransform")
        transform = None if gt is None else tuple(float(v) for v in np.asarray(gt).ravel())
    return EmitGeometry(name, shape, bands, glt, crs, transform, lat, lon)


def _check_glt_range(glt: tuple[np.ndarray, np.ndarray], shape: tuple[int, int], path: Path) -> None:
    """GLT indices (1-based) must stay inside the swath, and glt_x and glt_y must have one shape."""
    gx, gy = glt
    if gx.shape != gy.shape or gx.ndim != 2:
        raise FileFormatError(f"{path}: glt_x {gx.shape} and glt_y {gy.shape} must be 2-D and of one shape.")
    if (gx.size and gx.max() > shape[1]) or (gy.size and gy.max() > shape[0]):
        raise FileFormatError(
            f"{path}: the GLT points outside the swath ({shape[0]} lines x {shape[1]} samples; "
            f"GLT maxima {int(gy.max())}, {int(gx.max())}); the location group belongs to another granule."
        )


def require_glt(glt: tuple[np.ndarray, np.ndarray], path: str | Path) -> None:
    """Refuse to orthorectify through a GLT that has no valid entry (all 0): every output pixel would be empty.

    Raises:
        FileFormatError: Naming the file; sensor geometry (``ortho=False``, ``--no-ortho``) still works.
    """
    if not (glt[0].any() and glt[1].any()):
        raise FileFormatError(
            f"{path}: the GLT (location/glt_x, glt_y) has no valid entry (all 0), so nothing can be "
            "orthorectified; process in sensor geometry (--no-ortho, ortho=False)."
        )


def band_spans(bands: np.ndarray, max_gap: int = 8, band_chunk: int | None = None) -> list[tuple[int, int, np.ndarray]]:
    """Group sorted, unique band indices into ``(lo, hi, indices)`` spans, one hyperslab each.

    Spans split where the gap exceeds ``max_gap`` bands; with ``band_chunk`` (the band extent of the
    storage chunks) spans that touch the same chunk are merged, so that no chunk is read twice.
    """
    spans = [(int(g[0]), int(g[-1]) + 1, g) for g in runs(bands, max_gap)]
    if band_chunk is None or not spans:
        return spans
    merged = [spans[0]]
    for lo, hi, idx in spans[1:]:
        plo, phi, pidx = merged[-1]
        if lo // band_chunk <= (phi - 1) // band_chunk:
            merged[-1] = (plo, hi, np.concatenate([pidx, idx]))
        else:
            merged.append((lo, hi, idx))
    return merged


@dataclass(frozen=True)
class _Layout:
    """How the data variable is stored: shape, chunk shape (None: contiguous), dtype and filter ids."""

    shape: tuple[int, int, int]
    chunks: tuple[int, int, int] | None
    dtype: np.dtype
    filters: tuple[int, ...]
    fill: float

    @classmethod
    def of(cls, dataset: Any) -> _Layout:
        plist = dataset.id.get_create_plist()
        filters = tuple(int(plist.get_filter(i)[0]) for i in range(plist.get_nfilters()))
        chunks = None if dataset.chunks is None else tuple(int(c) for c in dataset.chunks)
        fill = float(dataset.fillvalue) if dataset.fillvalue is not None else 0.0
        return cls(tuple(int(s) for s in dataset.shape), chunks, np.dtype(dataset.dtype), filters, fill)

    @property
    def direct(self) -> bool:
        """True when the chunks can be decoded here (deflate and shuffle only), in parallel threads."""
        return self.chunks is not None and set(self.filters) <= {DEFLATE, SHUFFLE}

    def chunk_bytes(self) -> int:
        return int(np.prod(self.chunks or (1,))) * self.dtype.itemsize

    def cache_bytes(self) -> int:
        """HDF5 chunk-cache size that holds one row of chunks (every column and band chunk)."""
        if self.chunks is None:
            return 1 << 20
        per_row = -(-self.shape[1] // self.chunks[1]) * -(-self.shape[2] // self.chunks[2])
        return min(per_row * self.chunk_bytes() + (1 << 20), _MAX_CACHE)


def _place(chunks: StoredChunks, offset: tuple[int, int, int], layout: _Layout, where: tuple[slice, slice, np.ndarray],
           target: np.ndarray, scratch: threading.local) -> None:  # fmt: skip
    """Read and decode one chunk (in this thread's ``scratch``); copy its part ``where`` band-first into ``target``.

    ``where`` is (rows, columns, band indices) in the chunk. A shuffled chunk of native values (the usual
    EMIT case) is unshuffled only for the bands needed, straight into ``target``'s memory.
    """
    raw = chunks.read(offset)
    if raw is None:  # never written: the fill value
        target[...] = layout.fill
    else:
        _decode_into(raw, layout, where, target, scratch)
    target[target == FILL_VALUE] = np.nan


def _decode_into(raw: tuple[int, bytes], layout: _Layout, where: tuple[slice, slice, np.ndarray], target: np.ndarray,
                 scratch: threading.local) -> None:  # fmt: skip
    """Decode a stored chunk's part ``where`` into ``target`` (see :func:`_place`)."""
    rows, cols, bands = where
    args = (raw[1], raw[0], layout.filters, layout.dtype.itemsize, layout.chunk_bytes(), scratch)
    dest = _element_bytes(target, layout.dtype)
    planes = byte_planes(*args) if dest is not None else None
    if planes is not None:
        grid = planes.reshape(layout.dtype.itemsize, *layout.chunks)[:, rows, cols]
        unshuffle_into(grid, run_spans(bands), dest)
    else:
        chunk = decode_chunk(*args).view(layout.dtype).reshape(layout.chunks)
        target[...] = np.moveaxis(chunk[rows, cols, index_slice(bands)], -1, 0)


def _element_bytes(target: np.ndarray, stored: np.dtype) -> np.ndarray | None:
    """``target`` ``(bands, lines, samples)`` (pixel-major in memory) as ``(lines, samples, bands, itemsize)`` bytes.

    None when stored elements cannot be copied into it byte for byte (another type or byte order).
    """
    pixels = target.transpose(1, 2, 0)
    if target.dtype != stored or not stored.isnative or pixels.strides[-1] != stored.itemsize or not target.size:
        return None
    dest = pixels.view(np.uint8).reshape(*pixels.shape, stored.itemsize)
    return dest if np.shares_memory(dest, target) else None


class EmitReader:
    """Row blocks of a band subset of an EMIT granule, each stored chunk read and decompressed once.

    Chunked data is read in blocks of lines aligned to the storage chunks (:meth:`row_blocks`), one
    hyperslab per band span where spans that share a chunk are merged (:func:`band_spans`), and the
    HDF5 chunk cache holds one row of chunks. Deflate/shuffle chunks bypass HDF5: ``threads`` threads read
    them raw (``os.pread``) and decode them (:mod:`.hdf5_chunks`: libdeflate; both release the GIL); other
    filters are decoded by h5py. Contiguous, unfiltered data is read straight from the file a few lines at
    a time (:class:`~hyperplex.geo.io.emit_raw.ContiguousRows`); other contiguous data as one hyperslab per
    band span. Use as a context manager.

    Args:
        path: The granule.
        variable: ``"radiance"`` or ``"reflectance"``.
        threads: Decompression threads; default ``min(4, cpu_count)``.

    Raises:
        DataNotFoundError: If the file does not exist.
        FileFormatError: If it is not HDF5 or lacks a 3-D ``variable``.
    """

    def __init__(self, path: str | Path, *, variable: str = "radiance", threads: int | None = None) -> None:
        import h5py

        self.path = Path(path)
        _require_file(self.path)
        try:
            with h5py.File(self.path, "r") as f:
                self.layout = _Layout.of(f[variable])
        except (OSError, KeyError) as err:
            raise FileFormatError(f"{self.path}: no readable 3-D '{variable}' variable ({err}).") from err
        nbytes = self.layout.cache_bytes()
        slots = max(1009, 101 * (nbytes // self.layout.chunk_bytes() + 1))
        self._file = h5py.File(self.path, "r", rdcc_nbytes=nbytes, rdcc_nslots=slots, rdcc_w0=1.0)
        self._data = self._file[variable]
        self._raw = self._raw_rows(variable)
        self.threads = max(1, threads or min(4, os.cpu_count() or 1))
        self._pool = ThreadPoolExecutor(self.threads) if self.layout.direct and self.threads > 1 else None
        self._scratch = threading.local()  # each decoding thread's chunk buffers
        self._chunks = StoredChunks(self.path, self._data) if self.layout.direct else None

    def _raw_rows(self, variable: str) -> ContiguousRows | None:
        """A direct file reader when the data are one contiguous, unfiltered run of numbers in the file.

        None also where the platform has no ``os.preadv`` (Windows): h5py's hyperslab reads serve there.
        """
        raw = self.layout.chunks is None and not self.layout.filters and self.layout.dtype.kind in "fiu"
        raw = raw and hasattr(os, "preadv")
        offset = self._data.id.get_offset() if raw else None
        return None if offset is None else ContiguousRows(self.path, int(offset), self.layout.shape,
                                                          self.layout.dtype, variable)  # fmt: skip

    @property
    def raw_rows(self) -> ContiguousRows | None:
        """The direct line reader of contiguous, unfiltered data (None for chunked or filtered data)."""
        return self._raw

    def __enter__(self) -> EmitReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the threads and close the file."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self._chunks is not None:
            self._chunks.close()
        if self._raw is not None:
            self._raw.close()
        self._file.close()

    def row_blocks(self, lines: int) -> list[slice]:
        """Slices of about ``lines`` lines covering the swath; chunked data: whole rows of chunks."""
        height, step = self.layout.shape[0], max(1, int(lines))
        if self.layout.chunks is not None:
            step = max(self.layout.chunks[0], step // self.layout.chunks[0] * self.layout.chunks[0])
        return [slice(r, min(r + step, height)) for r in range(0, height, step)]

    def read(self, rows: slice, bands: slice | Sequence[int] | np.ndarray) -> np.ndarray:
        """Lines ``rows`` of ``bands`` as float32 ``(bands, rows, samples)``, fill as NaN.

        The block is stored pixel-major, as the granule is: the result is the band-first view of a C-ordered
        ``(rows, samples, bands)`` array (no transpose is made; ``np.ascontiguousarray`` gives a band-first copy).

        Args:
            rows: Downtrack lines, step 1.
            bands: A band span, or sorted unique band indices.
        """
        r0, r1, idx = self._check(rows, bands)
        pixels = np.empty((max(r1 - r0, 0), self.layout.shape[1], idx.size), np.float32)
        out = pixels.transpose(2, 0, 1)
        pos, jobs = 0, []
        band_chunk = None if self.layout.chunks is None else self.layout.chunks[2]
        with read_failures(self.path, f"'{self._data.name.lstrip('/')}' lines {r0}:{r1}"):  # a corrupt chunk
            if self._raw is not None and idx.size:  # contiguous, unfiltered: straight from the file
                self._raw.read(r0, r1, idx, pixels)
                return out
            for lo, hi, sel in band_spans(idx, band_chunk=band_chunk):
                part = out[pos : pos + sel.size]
                if self.layout.direct:
                    jobs += self._read_direct(r0, r1, sel, part)
                else:
                    part[...] = self._data[r0:r1, :, lo:hi][..., index_slice(sel - lo)].transpose(2, 0, 1)
                    part[part == FILL_VALUE] = np.nan
                pos += sel.size
            for job in jobs:
                job.result()
        return out

    def _check(self, rows: slice, bands: slice | Sequence[int] | np.ndarray) -> tuple[int, int, np.ndarray]:
        r0, r1, step = rows.indices(self.layout.shape[0])
        nb = self.layout.shape[2]
        idx = np.arange(*bands.indices(nb)) if isinstance(bands, slice) else np.asarray(bands, dtype=int).ravel()
        if step != 1 or np.any(np.diff(idx) <= 0) or (idx.size and (idx[0] < 0 or idx[-1] >= nb)):
            raise InvalidParameterError(
                f"{self.path}: read rows with step 1 and bands sorted, unique, in 0..{nb - 1}; got {rows}, {idx}."
            )
        return r0, r1, idx

    def _read_direct(self, r0: int, r1: int, sel: np.ndarray, out: np.ndarray) -> list[Future]:
        """Read and decode the chunks of lines ``r0:r1`` and bands ``sel`` into ``out`` (in the pool if any)."""
        (cr, cc, cb), width = self.layout.chunks, self.layout.shape[1]
        jobs: list[Future] = []
        if r1 <= r0:
            return jobs
        band_chunks = range(sel[0] // cb * cb, sel[-1] + 1, cb)  # the selected bands of each, found once
        per_band_chunk = [(b, k) for b in band_chunks if (k := np.flatnonzero((sel >= b) & (sel < b + cb))).size]
        for y in range(r0 // cr * cr, r1, cr):
            rows = slice(max(y, r0) - y, min(y + cr, r1) - y)
            for x in range(0, width, cc):
                for b, k in per_band_chunk:
                    where = (rows, slice(0, min(cc, width - x)), sel[k] - b)
                    target = out[k[0] : k[-1] + 1, y + rows.start - r0 : y + rows.stop - r0, x : x + cc]
                    task = (self._chunks, (y, x, b), self.layout, where, target, self._scratch)
                    if self._pool is None:
                        _place(*task)
                    else:
                        jobs.append(self._pool.submit(_place, *task))
        return jobs


def read_emit_block(
    path: str | Path, rows: slice, bands: slice | Sequence[int], *, variable: str = "radiance"
) -> np.ndarray:
    """Read lines ``rows`` of ``bands`` as float32 ``(bands, rows, samples)``, fill as NaN.

    Each stored chunk that the block touches is read and decompressed once (see :class:`EmitReader`).

    Args:
        path: The granule.
        rows: Downtrack lines.
        bands: A contiguous band span (step 1) or sorted, unique band indices.
        variable: ``"radiance"`` or ``"reflectance"``.

    Returns:
        The block.
    """
    with EmitReader(path, variable=variable, threads=1) as reader:
        return reader.read(rows, bands)


@_reports_damage
def open_emit(path: str | Path, *, chunks: Any = None, ortho: bool = False) -> xr.Dataset:
    """Open an EMIT L1B RAD (or L2A RFL) granule lazily as an xarray Dataset.

    The data variable (``radiance`` or ``reflectance``) comes channel-first with dims
    ``(band, downtrack, crosstrack)``, fill as NaN, and coordinates ``wavelength``, ``fwhm`` (and
    ``good_wavelengths``) on ``band``. ``lat``, ``lon`` and ``elev`` are 2-D coordinates (so they travel
    with the data variable and with filter results computed from it); the GLT (``glt_x``, ``glt_y``,
    1-based, 0 = no data) are included, and the attributes ``crs`` (WKT) and ``geotransform`` (GDAL
    order, of the ortho grid only: it does not georeference sensor-geometry arrays). Nothing is read
    until values are asked for.

    Args:
        path: The granule.
        chunks: dask chunks (e.g. ``{"downtrack": 256}``); None gives lazily indexed arrays without dask.
        ortho: If True, orthorectify through the GLT: dims ``(band, y, x)`` on the file's ortho grid
            with ``latitude``/``longitude`` coordinates and the CRS written (rioxarray). With ``chunks``
            this is lazy (a dask gather per ortho block, see :func:`hyperplex.geo.ortho_lazy.orthorectify`);
            without, it reads the whole cube.

    Returns:
        The dataset.

    Raises:
        DataNotFoundError: If the file does not exist.
        FileFormatError: If a group or variable of the EMIT layout is missing.
    """
    import xarray as xr

    p = Path(path)
    channels = emit_channels(p)
    geometry = read_emit_geometry(p, geolocation=False)
    root, loc = _open_group(p, None, chunks), _open_group(p, "location", None)
    name = geometry.variable
    if chunks is None:  # lazily indexed: a corrupt chunk found by .values names the file
        from hyperplex.geo.io.guarded import guarded_variable

        root[name] = guarded_variable(root[name].variable, p, f"'{name}'")
    cube = root[name].rename({"bands": "band"}).transpose("band", "downtrack", "crosstrack")
    ds = xr.Dataset({name: cube.assign_coords(channels.to_xarray_coords("band"))})
    ds = ds.assign_coords({var: loc[var] for var in ("lat", "lon", "elev") if var in loc})
    ds["glt_x"] = (("ortho_y", "ortho_x"), geometry.glt[0].astype(np.int32))
    ds["glt_y"] = (("ortho_y", "ortho_x"), geometry.glt[1].astype(np.int32))
    ds.attrs = {**root.attrs, "source_path": str(p), "data_variable": name, "crs": geometry.crs}
    if geometry.transform is not None:
        ds.attrs["geotransform"] = geometry.transform
    elif ortho:
        raise FileFormatError(f"{p}: no global 'geotransform' attribute; cannot orthorectify (use ortho=False).")
    if ortho:
        require_glt(geometry.glt, p)
    if ortho and chunks is not None:
        return _ortho_lazy(ds)
    if ortho:
        from hyperplex.geo.ortho import orthorectify_dataset

        return orthorectify_dataset(ds.reset_coords([c for c in ("lat", "lon", "elev") if c in ds.coords]))
    return ds


def _ortho_lazy(ds: xr.Dataset) -> xr.Dataset:
    """The granule's data variable and geolocation on the ortho grid as lazy dask gathers (nothing read)."""
    import xarray as xr

    from hyperplex.geo.ortho import ortho_transform
    from hyperplex.geo.ortho_lazy import OrthoGrid, orthorectify

    grid = OrthoGrid.of(ds)
    name = ds.attrs["data_variable"]
    cube = ds[name].copy(data=_lazy_cube(Path(ds.attrs["source_path"]), name, ds[name].shape))  # small blocks
    sensor = [k for k, v in ds.variables.items() if v.dims[-2:] == ("downtrack", "crosstrack") and k != name]
    out = xr.Dataset({name: orthorectify(cube, grid), **{k: orthorectify(ds[k], grid) for k in sensor}})
    out.attrs = dict(ds.attrs)
    return out.rio.write_crs(grid.crs).rio.write_transform(ortho_transform(grid.geotransform))


def emit_cube(path: str | Path, *, band_chunk: int = _LAZY_BANDS, line_chunk: int = _LAZY_LINES) -> xr.DataArray:
    """The granule's data variable as a lazy ``(band, downtrack, crosstrack)`` DataArray in small blocks.

    Like ``open_emit(path, chunks=...)[variable]`` (channel coordinates, 2-D ``lat``/``lon``/``elev``,
    the granule's attributes), but its dask blocks are ``band_chunk`` bands x ``line_chunk`` lines read
    through :class:`EmitReader`, so that a band plane, a band window or a bounding box reads only the
    blocks it touches and memory stays at a few blocks, whatever the file's own chunking.

    Args:
        path: The granule.
        band_chunk: Bands per block.
        line_chunk: Downtrack lines per block.

    Returns:
        The DataArray; nothing is read until values are asked for.

    Raises:
        DataNotFoundError: If the file does not exist.
        FileFormatError: If a group or variable of the EMIT layout is missing.
        InvalidParameterError: If a block size is not positive.
    """
    if int(band_chunk) < 1 or int(line_chunk) < 1:
        raise InvalidParameterError(f"`band_chunk` and `line_chunk` must be positive; got {band_chunk}, {line_chunk}.")
    ds = open_emit(path)
    name = ds.attrs["data_variable"]
    data = _lazy_cube(Path(path), name, ds[name].shape, int(band_chunk), int(line_chunk))
    return ds[name].copy(data=data).assign_attrs(ds.attrs)


def _read_lazy_block(path: Path, variable: str, block_info: dict | None = None) -> np.ndarray:
    (b0, b1), (r0, r1), _ = block_info[None]["array-location"]
    return read_emit_block(path, slice(r0, r1), slice(b0, b1), variable=variable)


def _lazy_cube(path: Path, variable: str, shape: tuple[int, int, int], band_chunk: int = _LAZY_BANDS,
               line_chunk: int = _LAZY_LINES) -> Any:  # fmt: skip
    """The data variable as a ``(band, downtrack, crosstrack)`` dask array read in small band x line blocks.

    Small blocks keep a slice (an ortho block's bounding box, a band window) from reading the cube.
    """
    import dask.array as da

    bands, lines, samples = shape
    chunks = (_splits(bands, band_chunk), _splits(lines, line_chunk), (samples,))
    return da.map_blocks(partial(_read_lazy_block, path, variable), chunks=chunks, dtype=np.float32,
                         meta=np.empty((0, 0, 0), np.float32))  # fmt: skip


def _splits(size: int, step: int) -> tuple[int, ...]:
    return tuple(min(step, size - i) for i in range(0, size, step))
