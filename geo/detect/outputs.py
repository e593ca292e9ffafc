"""Per-scene products: COG rasters, plume GeoJSON, run.json; each written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hyperplex.common.atomic import atomic_path

__all__ = ["PRODUCTS", "is_complete", "product_paths", "write_cog", "write_geojson", "write_json"]

#: Products written per scene, keyed by name, as file-name suffixes after ``<stem>``.
PRODUCTS = {
    "enhancement": "_ch4enh.tif",
    "plumes_raster": "_plumes.tif",
    "plumes_vector": "_plumes.geojson",
    "quicklook": "_quicklook.png",
    "run": "_run.json",
}


def product_paths(out_dir: Path, stem: str) -> dict[str, Path]:
    """Where each product of scene ``stem`` goes."""
    return {key: out_dir / f"{stem}{suffix}" for key, suffix in PRODUCTS.items()}


def is_complete(paths: dict[str, Path], parameters: dict[str, Any]) -> bool:
    """True when every product exists and run.json records a finished run with these ``parameters``.

    run.json is written last, so its presence marks a complete scene; a run with other options
    (another method, window, threshold, ...) is not a reason to skip.
    """
    if not all(p.is_file() for p in paths.values()):
        return False
    try:
        run = json.loads(paths["run"].read_text())
    except (OSError, ValueError):
        return False
    return run.get("status") == "complete" and _options(run.get("parameters", {})) == _options(parameters)


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

    Compression runs on every core (``NUM_THREADS=ALL_CPUS``) at deflate level 1: on enhancement maps
    (noise in every mantissa bit, or exact zeros) higher levels take several times longer for files about
    1 % smaller. Overviews average floating-point data (small plumes stay visible zoomed out) and take
    the nearest value for integer data (ids, classes), which an average would turn into other ids.

    Args:
        path: Output file.
        data: ``(H, W)`` array.
        crs: CRS (None for sensor geometry).
        transform: Affine transform (None for sensor geometry).
        nodata: No-data value.
        description: Band description.
        tags: Dataset tags (method, parameters, units, ...).
        units: The band's units (e.g. ``ppm·m``); default: the ``units`` tag for floating-point data (a
            measurement), none for integer data (ids, classes).

    Returns:
        The path written.
    """
    import rasterio

    floating = np.issubdtype(data.dtype, np.floating)
    units = tags.get("units") if units is None and floating else units
    profile = {"driver": "COG", "height": data.shape[0], "width": data.shape[1], "count": 1,
               "dtype": data.dtype, "crs": crs, "transform": transform, "nodata": nodata,
               "compress": "deflate", "level": 1, "blocksize": 256, "num_threads": "ALL_CPUS",
               "overview_resampling": "AVERAGE" if floating else "NEAREST"}  # fmt: skip
    if transform is None:
        profile.pop("transform")
    with atomic_path(path) as tmp:
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data, 1)
            dst.set_band_description(1, description)
            if units:
                dst.set_band_unit(1, units)
            dst.update_tags(**tags)
    return path


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    """Write JSON atomically (numpy scalars converted)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, default=_jsonable))
    return path


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
