"""Per-scene products: COG rasters, plume GeoJSON, run.json; each written atomically."""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from hyperplex.common.atomic import atomic_path
from hyperplex.common.errors import OutputExistsError
from hyperplex.geo.detect.faults import fault_point

__all__ = [
    "PRODUCTS",
    "SCORE_SUFFIX",
    "clean_stale_temporaries",
    "fingerprint",
    "is_complete",
    "naming",
    "new_run_id",
    "other_method",
    "product_paths",
    "refuse_other_method",
    "remove_stale_products",
    "write_cog",
    "write_geojson",
    "write_json",
]

#: Products written per scene, keyed by name, as file-name suffixes after ``<stem>``. Score methods
#: (CEM, ACE: units ``score``) write their map as ``_ch4score.tif`` instead of ``_ch4enh.tif`` (ppm·m only).
PRODUCTS = {
    "enhancement": "_ch4enh.tif",
    "uncertainty": "_ch4unc.tif",
    "plumes_raster": "_plumes.tif",
    "plumes_vector": "_plumes.geojson",
    "quicklook": "_quicklook.png",
    "run": "_run.json",
}


SCORE_SUFFIX = "_ch4score.tif"


def product_paths(out_dir: Path, stem: str, *, score: bool = False) -> dict[str, Path]:
    """Where each product of scene ``stem`` goes (``score``: the map is a unitless score)."""
    paths = {key: out_dir / f"{stem}{suffix}" for key, suffix in PRODUCTS.items()}
    if score:
        paths["enhancement"] = out_dir / f"{stem}{SCORE_SUFFIX}"
    return paths


def other_method(paths: dict[str, Path], method: str) -> str | None:
    """The method of a previous run of this scene in the same folder, when it differs from ``method``."""
    try:
        previous = json.loads(paths["run"].read_text()).get("method")
    except (OSError, ValueError):
        return None
    return previous if previous and previous != method else None


def refuse_other_method(paths: dict[str, Path], method: str, stem: str) -> None:
    """Raise when the folder holds scene ``stem``'s products of another method (``--overwrite`` replaces them).

    Raises:
        OutputExistsError: Naming the folder, the method found there and the two ways out.
    """
    previous = other_method(paths, method)
    if previous:
        folder = paths["run"].parent
        raise OutputExistsError(
            f"{folder}: holds {stem}'s products of method {previous!r} ({paths['run'].name}); write --method "
            f"{method} into another --out folder, or pass --overwrite to replace them (the {previous!r} products "
            "are then removed)."
        )


def remove_stale_products(paths: dict[str, Path], stem: str) -> list[Path]:
    """Remove scene ``stem``'s products that this run does not write but another method's run did.

    A score method writes ``_ch4score.tif`` where a ppm·m method writes ``_ch4enh.tif``; after an overwrite
    with the other kind, the old map would stay next to the new one. Called only once the new run is
    complete (its run.json written), so a killed run never loses the previous products before the new ones.

    Returns:
        The files removed.
    """
    folder = paths["run"].parent
    every = {*product_paths(folder, stem).values(), *product_paths(folder, stem, score=True).values()}
    stale = sorted(p for p in every - set(paths.values()) if p.is_file() or p.is_symlink())
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def new_run_id() -> str:
    """A fresh id for one run of one scene; every product of the run carries it."""
    return uuid.uuid4().hex[:16]


def clean_stale_temporaries(out_dir: Path, stem: str) -> list[Path]:
    """Remove the temporary files a killed run of scene ``stem`` left in ``out_dir`` (``.<stem>_*.tmp-*``).

    Returns:
        The files removed.
    """
    stale = [p for p in out_dir.glob(f".{glob.escape(stem)}_*.tmp-*") if p.is_file() or p.is_symlink()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def fingerprint(path: Path) -> list[int]:
    """``[size, mtime_ns]`` of a product: a file replaced by another run has another fingerprint."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def is_complete(paths: dict[str, Path], parameters: dict[str, Any]) -> bool:
    """True when every product exists and belongs to the finished run that run.json records, with these options.

    run.json is written last, so its presence marks a complete scene, but only for the products of its own
    run: each raster and the GeoJSON carry the run's id, and run.json holds every product's size and
    modification time, so products replaced by another (killed) run are never trusted. A run with other
    options (another method, window, threshold, ...) is not a reason to skip either.
    """
    if not all(p.is_file() for p in paths.values()):
        return False
    try:
        run = json.loads(paths["run"].read_text())
    except (OSError, ValueError):
        return False
    if run.get("status") != "complete" or _options(run.get("parameters", {})) != _options(parameters):
        return False
    return _same_run(paths, run)


def _same_run(paths: dict[str, Path], run: dict[str, Any]) -> bool:
    """Whether every product carries run.json's run id and fingerprint."""
    run_id, prints = run.get("run_id"), run.get("products", {})
    if not run_id or any(prints.get(k) != fingerprint(p) for k, p in paths.items() if k != "run"):
        return False
    import rasterio

    try:
        for key in ("enhancement", "plumes_raster"):
            with rasterio.open(paths[key]) as src:
                if src.tags().get("run_id") != run_id:
                    return False
        vector = json.loads(paths["plumes_vector"].read_text())
    except (OSError, ValueError, rasterio.errors.RasterioError):
        return False
    return vector.get("properties", {}).get("run_id") == run_id


def _options(parameters: dict[str, Any]) -> str:
    """Comparable form of a configuration: JSON without the switches that do not change results."""
    execution = ("overwrite", "chunk_lines", "chunk_tasks")
    return json.dumps({k: v for k, v in parameters.items() if k not in execution}, sort_keys=True, default=str)


def write_cog(
    path: Path,
    data: np.ndarray,
    *,
    crs: Any,
    transform: Any,
    nodata: float | int | None,
    description: str,
    tags: dict[str, str],
    units: str | None = None,
) -> Path:
    """Write a single-band Cloud-Optimized GeoTIFF (deflate, 256 px tiles, overviews).

    The band and the COG are built in memory by GDAL's copy, which releases the GIL while it compresses
    and builds the overviews (closing a dataset opened with the COG driver holds it for ~0.3 s: other
    threads, such as the quicklook's, would wait); Python then writes the file, reporting a full disk.
    Compression runs on every core (``NUM_THREADS=ALL_CPUS``) at deflate level 1: on enhancement maps
    (noise in every mantissa bit, or exact zeros) higher levels take several times longer for files about
    1 % smaller. Overviews average floating-point data (small plumes stay visible zoomed out) and take the
    nearest value for integer data (ids, classes), which an average would turn into other ids.

    Args:
        path: Output file.
        data: ``(H, W)`` array.
        crs: CRS (None for sensor geometry).
        transform: Affine transform (None for sensor geometry).
        nodata: No-data value.
        description: Band description.
        tags: Dataset tags (method, parameters, units, ...).
        units: The band's units (e.g. ``ppm·m``), also written as a band tag; default: the ``units`` tag for
            floating-point data (a measurement), none for integer data (ids, classes).

    Returns:
        The path written.
    """
    import rasterio
    import rasterio.shutil
    from rasterio.io import MemoryFile

    floating = np.issubdtype(data.dtype, np.floating)
    units = tags.get("units") if units is None and floating else units
    grid = {"height": data.shape[0], "width": data.shape[1], "count": 1, "dtype": data.dtype, "crs": crs,
            "transform": transform, "nodata": nodata}  # fmt: skip
    if transform is None:
        grid.pop("transform")
    options = {"compress": "deflate", "level": 1, "blocksize": 256, "num_threads": "ALL_CPUS",
               "overview_resampling": "AVERAGE" if floating else "NEAREST"}  # fmt: skip
    with naming(path), atomic_path(path) as tmp, _gdal_errors(path):
        with MemoryFile() as memory, memory.open(driver="MEM", **grid) as band, MemoryFile(ext=".tif") as cog:
            band.write(data, 1)
            band.set_band_description(1, description)
            band.update_tags(**tags)
            if units:
                band.set_band_unit(1, units)
                band.update_tags(1, units=units)
            with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
                rasterio.shutil.copy(band, cog.name, driver="COG", **options)  # the GIL is released while it runs
            _write_bytes(tmp, cog.read(), path)
        fault_point(f"{_product_key(path)}:temporary")
    return path


def _write_bytes(tmp: Path, payload: bytes, path: Path) -> None:
    """Write ``payload`` to ``tmp``; a failure (a full disk) is an OSError naming ``path``.

    The COG is built in memory and written here because GDAL's copy into a file only logs a write error
    ("No space left on device") and returns: the truncated file would then be renamed into place.
    """
    try:
        tmp.write_bytes(payload)
    except OSError as err:
        raise OSError(err.errno, f"{path}: {err.strerror or err}", str(path)) from err


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    """Write JSON atomically (numpy scalars converted)."""
    with naming(path), atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, default=_jsonable))
        fault_point(f"{_product_key(path)}:temporary")
    return path


@contextlib.contextmanager
def naming(path: Path) -> Iterator[None]:
    """An OSError while writing ``path`` (a full disk, a vanished folder) names ``path`` when it named no file."""
    try:
        yield
    except OSError as err:
        if err.filename:
            raise
        raise OSError(err.errno, f"{path}: {err.strerror or err}", str(path)) from err


@contextlib.contextmanager
def _gdal_errors(path: Path) -> Iterator[None]:
    """A GDAL write error becomes an OSError naming ``path`` (and saying so when the disk is full)."""
    from rasterio._err import CPLE_BaseError  # GDAL's errors (rasterio exports no public base class for them)
    from rasterio.errors import RasterioError

    try:
        yield
    except (CPLE_BaseError, RasterioError) as err:
        full = shutil.disk_usage(path.parent).free < _FULL_DISK_BYTES
        code, reason = (errno.ENOSPC, os.strerror(errno.ENOSPC)) if full else (errno.EIO, "GDAL could not write it")
        raise OSError(code, f"{path}: {reason} ({err})", str(path)) from err


#: Free space below which a failed write is reported as a full disk.
_FULL_DISK_BYTES = 1 << 20


def _product_key(path: Path) -> str:
    """The :data:`PRODUCTS` key of a product path (its file name suffix), for fault points."""
    return next((k for k, suffix in PRODUCTS.items() if path.name.endswith(suffix)), path.name)


def write_geojson(path: Path, features: list[dict[str, Any]], properties: dict[str, Any]) -> Path:
    """Write a GeoJSON FeatureCollection (RFC 7946: lon/lat, EPSG:4326)."""
    return write_json(path, {"type": "FeatureCollection", "name": path.stem, "properties": properties,
                             "features": features})  # fmt: skip


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
