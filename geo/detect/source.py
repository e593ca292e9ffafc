"""A scene to process: its bands, geometry and a chunked reader of just the bands a method needs.

Files are recognised and read through ``hyperplex.geo.io`` (the format registry). EMIT granules are
read with :func:`~hyperplex.geo.io.read_emit_block`, one slab of lines and a contiguous band span at a
time, so a full scene never has to be in memory; ENVI and GeoTIFF cubes go through their lazy readers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from hyperplex.common.arrays import materialize
from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import FileFormatError
from hyperplex.common.formats import FORMATS
from hyperplex.geo.io import emit_channels, read_emit_block, read_emit_geometry
from hyperplex.geo.io.emit import EmitReader, band_spans
from hyperplex.geo.nodata import FILL_VALUE

__all__ = ["SceneSource", "open_source", "prefetch"]

T = TypeVar("T")


@dataclass
class SceneSource:
    """Everything the pipeline needs to know about an input file.

    Attributes:
        path: The file.
        kind: 'emit', 'envi' or 'geotiff'.
        channels: Band centres and widths.
        shape: ``(lines, samples)`` of the data grid (sensor geometry for EMIT).
        glt: ``(glt_x, glt_y)`` for EMIT, else None.
        crs: CRS of the output grid (WKT), None when unknown.
        transform: GDAL geotransform of the output grid.
        lat: Pixel latitudes in sensor geometry (EMIT), else None.
        lon: Pixel longitudes in sensor geometry (EMIT), else None.
    """

    path: Path
    kind: str
    channels: ChannelSet
    shape: tuple[int, int]
    glt: tuple[np.ndarray, np.ndarray] | None
    crs: str | None
    transform: tuple[float, ...] | None
    lat: np.ndarray | None = None
    lon: np.ndarray | None = None
    _cube: Any = None

    @classmethod
    def from_array(
        cls, cube: Any, channels: Any, *, pixel_size_m: float | None = None, name: str = "array"
    ) -> SceneSource:
        """An in-memory ``(C, H, W)`` radiance cube (numpy or dask) with its channels (nm).

        Args:
            cube: Radiance, channel-first; -9999 and NaN are fill.
            channels: A ChannelSet or wavelengths in nm.
            pixel_size_m: Ground pixel size, for plume areas and masses (no CRS: no lon/lat).
            name: Label used in messages and products.
        """
        channels = ChannelSet.coerce(channels, int(cube.shape[0]))
        channels.require_wavelengths("Methane detection")
        if channels.fwhm is None:
            channels = ChannelSet.from_wavelengths(channels.wavelengths, _spacing(channels.wavelengths))
        transform = None if pixel_size_m is None else (0.0, float(pixel_size_m), 0.0, 0.0, 0.0, -float(pixel_size_m))
        shape = (int(cube.shape[1]), int(cube.shape[2]))
        return cls(Path(name), "array", channels, shape, None, None, transform, _cube=cube)

    @property
    def stem(self) -> str:
        """File name without its extension."""
        return self.path.name.split(".")[0] if self.kind == "emit" else self.path.stem

    def iter_bands(self, bands: np.ndarray, chunk_lines: int, client: Any = None) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield ``(rows, block)`` with ``block`` float32 ``(len(bands), rows, samples)``, fill as NaN.

        ``bands`` must be sorted and unique; they are read as a few contiguous spans (e.g. the visible
        bands of the quicklook and the SWIR window), not as one span from the first to the last, except
        where the spans share storage chunks. Blocks of a chunked EMIT granule are whole rows of chunks
        (about ``chunk_lines`` lines), each chunk decompressed once; the next block is read in a
        background thread while the caller works on the current one. With a dask ``client``, each
        block is read by a task on the cluster and the blocks arrive in completion order.
        """
        if client is not None:
            yield from self._iter_cluster(bands, chunk_lines, client)
        elif self.kind == "emit":
            with EmitReader(self.path) as reader:
                yield from prefetch(lambda rows: reader.read(rows, bands), reader.row_blocks(chunk_lines))
        else:
            yield from prefetch(lambda rows: self.read_rows(rows, bands), self.row_blocks(chunk_lines))

    def row_blocks(self, chunk_lines: int) -> list[slice]:
        """The blocks of lines :meth:`iter_bands` reads (for EMIT, aligned to the storage chunks)."""
        if self.kind == "emit":
            with EmitReader(self.path, threads=1) as reader:
                return reader.row_blocks(chunk_lines)
        step = max(1, int(chunk_lines))
        return [slice(r0, min(r0 + step, self.shape[0])) for r0 in range(0, self.shape[0], step)]

    def _iter_cluster(self, bands: np.ndarray, chunk_lines: int, client: Any) -> Iterator[tuple[slice, np.ndarray]]:
        from dask.distributed import as_completed

        light = client.scatter(replace(self, lat=None, lon=None, glt=None), broadcast=True)
        blocks = self.row_blocks(chunk_lines)
        futures = {client.submit(_read_rows, light, rows, bands, pure=False): rows for rows in blocks}
        for future in as_completed(futures):
            yield futures[future], future.result()
            future.release()

    def read_rows(self, rows: slice, bands: np.ndarray) -> np.ndarray:
        """Read lines ``rows`` of the sorted, unique ``bands`` as float32 ``(len(bands), rows, samples)``."""
        if self.kind == "emit":
            return read_emit_block(self.path, rows, bands)
        parts = [self._read(rows, lo, hi)[idx - lo] for lo, hi, idx in band_spans(np.asarray(bands))]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _read(self, rows: slice, lo: int, hi: int) -> np.ndarray:
        block = materialize(self._cube[lo:hi, rows, :], np.float32)
        if self.kind == "array":
            block = np.where(block == FILL_VALUE, np.nan, block)
        return block


def prefetch(read: Callable[[T], np.ndarray], items: Iterable[T]) -> Iterator[tuple[T, np.ndarray]]:
    """Yield ``(item, read(item))`` in order, reading the next item in a background thread meanwhile.

    At most two results are held at a time (the one yielded and the one being read).
    """
    with ThreadPoolExecutor(1, thread_name_prefix="hyperplex-read") as pool:
        pending: Future | None = None
        current = None
        for item in items:
            future = pool.submit(read, item)
            if pending is not None:
                yield current, pending.result()
            pending, current = future, item
        if pending is not None:
            yield current, pending.result()


def _read_rows(source: SceneSource, rows: slice, bands: np.ndarray) -> np.ndarray:
    """Module-level task body for dask (a bound method would ship the whole source each time)."""
    return source.read_rows(rows, bands)


def _open_emit_source(path: Path) -> SceneSource:
    channels = emit_channels(path)
    geo = read_emit_geometry(path)
    if geo.variable != "radiance":
        raise FileFormatError(f"{path}: no 'radiance' variable; pass an EMIT L1B RAD granule.")
    if geo.lat is None or geo.lon is None:
        raise FileFormatError(f"{path}: group 'location' with glt_x, glt_y, lat, lon is missing.")
    if geo.bands != len(channels):
        raise FileFormatError(f"{path}: radiance has {geo.bands} bands but {len(channels)} wavelengths.")
    if geo.transform is None:
        raise FileFormatError(f"{path}: no global 'geotransform' attribute; cannot place the GLT grid on the map.")
    return SceneSource(path, "emit", channels, geo.shape, geo.glt, geo.crs, geo.transform, geo.lat, geo.lon)


def _spacing(wavelengths: np.ndarray) -> np.ndarray:
    """Band spacing as a FWHM estimate for files that do not record FWHM."""
    order = np.argsort(wavelengths)
    gaps = np.gradient(wavelengths[order]) if wavelengths.size > 1 else np.array([10.0])
    out = np.empty_like(wavelengths)
    out[order] = np.abs(gaps)
    return np.maximum(out, 1e-3)


def open_source(path: str | Path) -> SceneSource:
    """Open an EMIT granule, ENVI cube or multi-band GeoTIFF for the pipeline.

    The format is the registered hyperspectral one that claims the file (as for ``open_cube``).

    Raises:
        DataNotFoundError: If the file does not exist.
        FileFormatError: If it is not a supported radiance file or lacks wavelengths.
    """
    p = Path(path)
    fmt = FORMATS.require(p, "hyperspectral", noun="radiance file (cannot detect methane in it)")
    if fmt.name == "emit":
        return _open_emit_source(p)
    cube = fmt.open(p)
    channels = ChannelSet.from_xarray(cube)
    if not channels.is_spectral:
        raise FileFormatError(f"{p}: the bands carry no wavelengths; add wavelength metadata (nm) to the file.")
    if channels.fwhm is None:  # common for GeoTIFF exports: assume Nyquist-sampled bands
        channels = ChannelSet.from_wavelengths(channels.wavelengths, _spacing(channels.wavelengths),
                                               names=channels.names)  # fmt: skip
    return SceneSource(p, fmt.name, channels, tuple(cube.shape[1:]), None, cube.attrs.get("crs"),
                       cube.attrs.get("geotransform"), _cube=cube.data)  # fmt: skip
