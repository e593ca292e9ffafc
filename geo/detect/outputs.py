"""Per-scene products: COG rasters, plume GeoJSON, run.json; each written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hyperplex.common.atomic import atomic_path

__all__ = [
    "PRODUCTS",
    "SCORE_SUFFIX",
    "is_complete",
    "other_method",
    "product_paths",
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

    Args:
        path: Output file.
        data: ``(H, W)`` array.
        crs: CRS (None for sensor geometry).
        transform: Affine transform (None for sensor geometry).
        nodata: No-data value.
        description: Band description.
        tags: Dataset tags (method, parameters, units, ...).
        units: The band's units tag (``ppm·m`` or ``score``), also written as a band tag.

    Returns:
        The path written.
    """
    import rasterio

    profile = {"driver": "COG", "height": data.shape[0], "width": data.shape[1], "count": 1,
               "dtype": data.dtype, "crs": crs, "transform": transform, "nodata": nodata,
               "compress": "deflate", "blocksize": 256}  # fmt: skip
    if transform is None:
        profile.pop("transform")
    with atomic_path(path) as tmp:
        with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data, 1)
            dst.set_band_description(1, description)
            dst.update_tags(**tags)
            if units:
                dst.set_band_unit(1, units)
                dst.update_tags(1, units=units)
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
