"""Georeference and write one scene's products, the enhancement map while the plumes are still being described.

:class:`ProductWriter` starts on the enhancement map as soon as the filter has made it: a second thread puts
the map and the RGB bands on the output grid, writes ``_ch4enh.tif`` and stretches the quicklook's RGB while
the caller delineates and vets the plumes (numpy and GDAL release the GIL for most of that work, so the two
share the machine's cores). :meth:`ProductWriter.finish` then puts the plume ids on the grid, starts the
quicklook in the second thread, puts the uncertainty on the grid, traces the plume polygons and writes the
uncertainty and plume COGs and the GeoJSON meanwhile.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from hyperplex.common._version import __version__
from hyperplex.geo.detect.config import DetectConfig
from hyperplex.geo.detect.faults import fault_point
from hyperplex.geo.detect.outputs import naming, write_cog, write_geojson
from hyperplex.geo.detect.polygons import label_polygons, lonlat_mapper
from hyperplex.geo.detect.source import SceneSource
from hyperplex.geo.geodesy import cell_area_m2
from hyperplex.geo.io.emit import require_glt
from hyperplex.geo.ortho import gather_glt, glt_index, ortho_transform
from hyperplex.geo.quicklook import rgb_image, write_plume_map

__all__ = ["OutputGrid", "ProductWriter"]


@dataclass(frozen=True)
class OutputGrid:
    """Where a scene's products go: the GLT's orthorectified grid, the data's own grid, or sensor geometry.

    Attributes:
        crs: CRS of the grid (None in sensor geometry).
        transform: Affine transform (None in sensor geometry or without one).
        index: Flat sensor pixel of every output pixel (GLT grids only).
        valid: Output pixels the GLT fills (GLT grids only).
    """

    crs: Any
    transform: Any
    index: np.ndarray | None = None
    valid: np.ndarray | None = None

    @classmethod
    def of(cls, source: SceneSource, cfg: DetectConfig, shape: tuple[int, int]) -> OutputGrid:
        """The grid of ``source``'s products for data of ``shape`` (lines, samples)."""
        if source.glt is not None and cfg.ortho:
            require_glt(source.glt, source.path)
            index, valid = glt_index(*source.glt, *shape)
            return cls(source.crs, ortho_transform(source.transform), index, valid)
        if source.glt is not None:
            return cls(None, None)  # sensor geometry: no affine grid
        from affine import Affine

        return cls(source.crs, Affine.from_gdal(*source.transform) if source.transform else None)

    def put(self, layer: np.ndarray) -> np.ndarray:
        """``layer`` ``(..., lines, samples)`` on this grid (NaN, or 0 for integers, where nothing falls)."""
        if self.index is None:
            return layer
        fill = np.nan if np.issubdtype(layer.dtype, np.floating) else 0
        return gather_glt(layer, self.index, self.valid, fill=fill).astype(layer.dtype, copy=False)


class ProductWriter:
    """Writes one scene's products (see the module docstring); use it as a context manager.

    Leaving the context waits for the second thread: a product it is writing is finished (written whole,
    then renamed) even when the caller fails or is interrupted meanwhile.

    Args:
        paths: The scene's product paths (:func:`~hyperplex.geo.detect.outputs.product_paths`).
        source: The scene.
        cfg: The run's options.
        run_id: This run's id (written into every product).
        shape: ``(lines, samples)`` of the data.
    """

    def __init__(self, paths: dict[str, Path], source: SceneSource, cfg: DetectConfig, run_id: str,
                 shape: tuple[int, int]) -> None:  # fmt: skip
        self.paths, self.source, self.cfg, self.run_id = paths, source, cfg, run_id
        self.grid = OutputGrid.of(source, cfg, shape)
        self.tags = {
            "run_id": run_id,
            "method": cfg.method,
            "units": cfg.units,
            "parameters": json.dumps(cfg.to_dict()),
            "software": f"hyperplex {__version__}",
            "source": source.path.name,
            "geometry": "ortho" if self.grid.crs is not None else "sensor",
        }
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="products")
        self._map: Future[tuple[np.ndarray, np.ndarray]] | None = None

    def __enter__(self) -> ProductWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def start_map(self, enhancement: np.ndarray, rgb: np.ndarray | None) -> None:
        """Put the map and the RGB bands on the grid and write ``_ch4enh.tif``, in the second thread."""
        self._map = self._pool.submit(self._write_map, enhancement, rgb)

    def finish(self, labels: np.ndarray, uncertainty: np.ndarray, plumes: list[dict[str, Any]],
               lo: float) -> dict[str, float]:  # fmt: skip
        """Write every other product; returns the seconds spent georeferencing and writing (this thread).

        Args:
            labels: ``(lines, samples)`` plume ids (0 = none).
            uncertainty: ``(lines, samples)`` 1-sigma enhancement uncertainty, ppm·m.
            plumes: The kept plumes' attributes (their ``bbox`` is set from the polygons).
            lo: Lowest enhancement the quicklook colours.
        """
        if self._map is None:
            raise RuntimeError("ProductWriter.finish before start_map")
        t = time.perf_counter()
        ids = self.grid.put(labels)
        with naming(self.paths["enhancement"]):
            enhancement, rgb = self._map.result()
        quicklook = self._pool.submit(self._write_quicklook, enhancement, ids, rgb, plumes, lo)  # the longest
        sigma = self.grid.put(uncertainty)
        polygons = self._polygons(ids)
        timings = {"georeference": time.perf_counter() - t}
        fault_point("georeferenced")
        t = time.perf_counter()
        self._write_rasters(ids, sigma, plumes, polygons)
        with naming(self.paths["quicklook"]):
            quicklook.result()
        fault_point("quicklook")
        timings["write"] = time.perf_counter() - t
        return timings

    def _write_map(self, enhancement: np.ndarray, rgb: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        cfg, grid = self.cfg, self.grid
        out = grid.put(enhancement)
        what = "CH4 enhancement (ppm·m)" if cfg.units == "ppm·m" else f"CH4 detection score ({cfg.method}, unitless)"
        write_cog(self.paths["enhancement"], out, crs=grid.crs, transform=grid.transform, nodata=np.nan,
                  description=what, tags=self.tags, units=cfg.units)  # fmt: skip
        fault_point("enhancement")
        image = rgb_image(grid.put(rgb)) if rgb is not None else np.zeros((*out.shape, 3), np.float32)
        return out, image

    def _polygons(self, ids: np.ndarray) -> dict[int, Any]:
        source, grid = self.source, self.grid
        if source.glt is not None and not self.cfg.ortho:
            return label_polygons(ids, mapper=lonlat_mapper(source.lat, source.lon))
        if grid.transform is None:
            return {}
        return label_polygons(ids, transform=grid.transform, crs=grid.crs)

    def _write_rasters(self, ids: np.ndarray, sigma: np.ndarray, plumes: list[dict[str, Any]],
                       polygons: dict[int, Any]) -> None:  # fmt: skip
        """The uncertainty and plume COGs and the plume GeoJSON, in order (each followed by its fault point)."""
        paths, grid, cfg, tags = self.paths, self.grid, self.cfg, self.tags
        write_cog(paths["uncertainty"], sigma, crs=grid.crs, transform=grid.transform, nodata=np.nan, units="ppm·m",
                  description="1-sigma CH4 enhancement uncertainty (ppm·m) of the albedo-corrected matched filter",
                  tags={**tags, "units": "ppm·m"})  # fmt: skip
        fault_point("uncertainty")
        write_cog(paths["plumes_raster"], ids.astype(np.uint16), crs=grid.crs, transform=grid.transform, nodata=0,
                  description="plume id (0 = none)", units="1", tags=tags)  # fmt: skip
        fault_point("plumes_raster")
        properties = {"method": cfg.method, "units": cfg.units, "run_id": self.run_id}
        write_geojson(paths["plumes_vector"], _features(plumes, polygons), properties)
        fault_point("plumes_vector")

    def _write_quicklook(self, enhancement: np.ndarray, ids: np.ndarray, rgb: np.ndarray,
                         plumes: list[dict[str, Any]], lo: float) -> None:  # fmt: skip
        """Plume map: RGB, the enhancement above ``lo`` up to the plumes' peaks, labels, scale bar, insets."""
        pixel_m, corners = _ground_scale(enhancement.shape, self.grid.transform, self.grid.crs)
        write_plume_map(self.paths["quicklook"], rgb, enhancement, ids, plumes, lo=max(lo, 1e-6),
                        units=self.cfg.units, pixel_m=pixel_m, title=f"{self.source.stem} - {self.cfg.method}",
                        corners=corners)  # fmt: skip


def _features(plumes: list[dict[str, Any]], polygons: dict[int, Any]) -> list[dict[str, Any]]:
    feats = []
    for p in plumes:
        geom = polygons.get(p["id"])
        if geom is not None:
            p["bbox"] = [round(v, 7) for v in geom.bounds]
        feats.append({"type": "Feature", "id": p["id"], "properties": p,
                      "geometry": None if geom is None else geom.__geo_interface__})  # fmt: skip
    return feats


def _ground_scale(shape: tuple[int, ...], transform: Any, crs: Any) -> tuple[float | None, tuple[str, str] | None]:
    """Pixel size in m and corner coordinate labels of an output grid (None where unknown)."""
    if transform is None:
        return None, None
    from rasterio.crs import CRS

    geographic = crs is not None and CRS.from_user_input(crs).is_geographic
    (x0, y0), (x1, y1) = transform @ (0, 0), transform @ (shape[1], shape[0])
    if not geographic:
        return float(np.sqrt(abs(transform.a * transform.e))), None
    area = cell_area_m2(transform.a, transform.e, 0.5 * (y0 + y1))
    return float(np.sqrt(area)), (_lonlat(x0, y0), _lonlat(x1, y1))


def _lonlat(lon: float, lat: float) -> str:
    return f"{abs(lat):.4f}°{'N' if lat >= 0 else 'S'} {abs(lon):.4f}°{'E' if lon >= 0 else 'W'}"
