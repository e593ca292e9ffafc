"""Methane detection on one scene, end to end: read, mask, filter, delineate, vet, georeference, write."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hyperplex.common._version import __version__
from hyperplex.common.errors import InvalidParameterError, NoValidDataError
from hyperplex.common.progress import progress
from hyperplex.geo.detect.config import DetectConfig
from hyperplex.geo.detect.delineate import Delineation, delineate
from hyperplex.geo.detect.masks import SceneMasks
from hyperplex.geo.detect.outputs import is_complete, product_paths, write_cog, write_geojson, write_json
from hyperplex.geo.detect.plume_table import describe_plumes
from hyperplex.geo.detect.polygons import label_polygons, lonlat_mapper
from hyperplex.geo.detect.source import SceneSource, open_source
from hyperplex.geo.ortho import apply_glt, ortho_transform
from hyperplex.geo.quicklook import RGB_NM, rgb_image, write_quicklook

__all__ = ["Analysis", "analyze", "detect_scene"]

_FLARE_NM = 2389.486


def _filter_bands(source: SceneSource, cfg: DetectConfig) -> np.ndarray:
    """Indices of the bands the filter uses (the window, or a selection inside it)."""
    channels = source.channels
    idx = channels.window(*cfg.window)
    if cfg.bands is not None:
        from hyperplex.geo.methane import select_bands

        idx = np.asarray(
            select_bands(channels.wavelengths, cfg.bands, cfg.band_strategy, fwhm=channels.fwhm, window=cfg.window)
        )
    if idx.size < 3:
        raise InvalidParameterError(
            f"{source.path}: only {idx.size} bands inside the window {cfg.window} nm; widen --window."
        )
    return np.sort(idx)


def _aux_bands(source: SceneSource, cfg: DetectConfig) -> dict[str, np.ndarray]:
    """Bands for masks and the quicklook, where the sensor covers them."""
    ch = source.channels
    wl = ch.wavelengths
    out = {"saturation": ch.window(*cfg.masks.saturation_window)}
    out["flare"] = (
        np.array([ch.nearest(_FLARE_NM)]) if abs(wl[ch.nearest(_FLARE_NM)] - _FLARE_NM) < 15 else np.array([])
    )
    rgb = [ch.nearest(w) for w in RGB_NM]
    out["rgb"] = np.array(rgb) if all(abs(wl[i] - w) < 30 for i, w in zip(rgb, RGB_NM)) else np.array([])
    return out


def _read(
    source: SceneSource, filt: np.ndarray, aux: dict[str, np.ndarray], cfg: DetectConfig, client: Any = None
) -> tuple[np.ndarray, np.ndarray | None, SceneMasks]:
    """Read the needed bands chunk by chunk (as dask tasks with a ``client``): filter cube, RGB, masks."""
    needed = np.unique(np.concatenate([filt, *aux.values()]).astype(int))
    pos = {b: i for i, b in enumerate(needed)}
    h, w = source.shape
    cube = np.empty((filt.size, h, w), dtype=np.float32)
    rgb = np.zeros((3, h, w), dtype=np.float32) if aux["rgb"].size else None
    masks = SceneMasks((h, w))
    chunks = source.iter_bands(needed, cfg.chunk_lines, client)
    total = len(source.row_blocks(cfg.chunk_lines))
    for rows, block in progress(chunks, total=total, desc=f"read {source.stem[:24]}", unit="chunk"):
        cube[:, rows] = block[[pos[b] for b in filt]]
        if rgb is not None:
            rgb[:, rows] = block[[pos[b] for b in aux["rgb"]]]
        sat = block[[pos[b] for b in aux["saturation"]]] if aux["saturation"].size else block[:0]
        flare = block[pos[aux["flare"][0]]] if aux["flare"].size else np.zeros(block.shape[1:], np.float32)
        masks.update(rows, cube[:, rows], sat, flare, cfg.masks)
    masks.finish(cfg.masks)
    return cube, rgb, masks


def _run_filter(cube: np.ndarray, source: SceneSource, filt: np.ndarray, excluded: np.ndarray,
                cfg: DetectConfig) -> np.ndarray:  # fmt: skip
    """The method's map on the filter bands (already chosen: ``window=None``), NaN where excluded."""
    ch = source.channels[filt]
    method = cfg.method_spec
    values = method(cube, ch.wavelengths, ch.fwhm, mask=excluded, window=None, group=cfg.group, **cfg.method_options)
    enh = np.asarray(values, dtype=np.float32)
    enh[excluded] = np.nan
    return enh


def _to_output_grid(source: SceneSource, cfg: DetectConfig, *layers: np.ndarray) -> tuple[list[np.ndarray], Any, Any]:
    """Put sensor-geometry layers onto the output grid; returns (layers, crs, transform)."""
    if source.glt is not None and cfg.ortho:
        gx, gy = source.glt
        fills = [np.nan if np.issubdtype(layer.dtype, np.floating) else 0 for layer in layers]
        out = [apply_glt(layer, gx, gy, fill=f).astype(layer.dtype) for layer, f in zip(layers, fills)]
        return out, source.crs, ortho_transform(source.transform)
    if source.glt is not None:
        return list(layers), None, None  # sensor geometry: no affine grid
    from affine import Affine

    transform = Affine.from_gdal(*source.transform) if source.transform else None
    return list(layers), source.crs, transform


def _polygons(
    source: SceneSource, cfg: DetectConfig, labels_out: np.ndarray, crs: Any, transform: Any
) -> dict[int, Any]:
    if source.glt is not None and not cfg.ortho:
        return label_polygons(labels_out, mapper=lonlat_mapper(source.lat, source.lon))
    if transform is None:
        return {}
    return label_polygons(labels_out, transform=transform, crs=crs)


def _features(plumes: list[dict[str, Any]], polygons: dict[int, Any]) -> list[dict[str, Any]]:
    feats = []
    for p in plumes:
        geom = polygons.get(p["id"])
        if geom is not None:
            p["bbox"] = [round(v, 7) for v in geom.bounds]
        feats.append({"type": "Feature", "id": p["id"], "properties": p,
                      "geometry": None if geom is None else geom.__geo_interface__})  # fmt: skip
    return feats


def _delineate(enh: np.ndarray, valid: np.ndarray, cfg: DetectConfig) -> Delineation:
    """Plume candidates: statistical thresholds, or the method's fixed threshold (a probability's 0.5)."""
    spec = cfg.method_spec
    if spec.threshold is None:
        return delineate(enh, valid, cfg.delineation, absolute=not spec.is_score)
    fixed = replace(cfg.delineation, threshold=spec.threshold, background_k=0.0, min_peak=spec.threshold)
    return delineate(enh, valid, fixed, absolute=True)


@dataclass
class Analysis:
    """Detection results for one scene, in the data's own (sensor) geometry.

    Attributes:
        source: The scene.
        bands: Indices of the filter bands.
        enhancement: ``(H, W)`` float32, ppm·m (score for CEM/ACE), NaN where invalid or masked.
        labels: ``(H, W)`` uint16 ids of kept plumes (0 = none).
        plumes: Attributes of kept plumes (ids 1..n).
        rejected: Attributes of rejected candidates, with the reason.
        masks: The scene masks.
        rgb: ``(3, H, W)`` red, green, blue radiance, or None when the sensor has no visible bands.
        found: The delineation (threshold, background).
        timings: Seconds per stage.
    """

    source: SceneSource
    bands: np.ndarray
    enhancement: np.ndarray
    labels: np.ndarray
    plumes: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    masks: SceneMasks
    rgb: np.ndarray | None
    found: Delineation
    timings: dict[str, float] = field(default_factory=dict)


def analyze(source: SceneSource, config: DetectConfig | None = None, *, client: Any = None) -> Analysis:
    """Read, mask, filter, delineate and vet one scene, without writing anything.

    Args:
        source: From :func:`open_source` (a file) or :meth:`SceneSource.from_array` (in memory).
        config: Options.
        client: A dask.distributed client: the scene's line chunks are then read as tasks on it.

    Returns:
        The analysis in the data's geometry.

    Raises:
        NoValidDataError: If every pixel is fill or masked.
    """
    cfg = config or DetectConfig()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    filt, aux = _filter_bands(source, cfg), _aux_bands(source, cfg)
    cube, rgb, masks = _read(source, filt, aux, cfg, client)
    timings["read"] = time.perf_counter() - t0
    excluded = masks.excluded
    if excluded.all():
        raise NoValidDataError(f"{source.path}: no valid pixels (all fill or masked: {masks.counts()}).")
    t = time.perf_counter()
    enh = _run_filter(cube, source, filt, excluded, cfg)
    timings["filter"] = time.perf_counter() - t
    t = time.perf_counter()
    found = _delineate(enh, ~excluded, cfg)
    plumes, rejected, labels = describe_plumes(found, enh, cube, source, filt, excluded, cfg)
    timings["delineate"] = time.perf_counter() - t
    return Analysis(source, filt, enh, labels, plumes, rejected, masks, rgb, found, timings)


def detect_scene(
    path: str | Path, out_dir: str | Path, config: DetectConfig | None = None, *, client: Any = None
) -> dict[str, Any]:
    """Detect methane plumes in one radiance scene and write its products into ``out_dir``.

    Products (``<stem>`` = file name without extension): ``_ch4enh.tif`` (enhancement COG, ppm·m or
    score, orthorectified through the GLT for EMIT), ``_plumes.tif`` (uint16 plume ids),
    ``_plumes.geojson``, ``_quicklook.png`` and ``_run.json``. A scene whose products are complete
    and were made with the same options is skipped unless ``config.overwrite``.

    Args:
        path: EMIT L1B RAD granule, ENVI cube or multi-band GeoTIFF (radiance with wavelengths).
        out_dir: Output directory.
        config: Options; defaults to Mag1c with the standard masks and delineation.
        client: A dask.distributed client to read the scene's line chunks as tasks (large scenes).

    Returns:
        Summary: scene, status ('complete' or 'skipped'), plume count, plumes, outputs, timings.

    Raises:
        NoValidDataError: If every pixel is fill or masked.
    """
    cfg = config or DetectConfig()
    source = open_source(path)
    paths = product_paths(Path(out_dir), source.stem)
    if not cfg.overwrite and is_complete(paths, cfg.to_dict()):
        return {"scene": source.stem, "status": "skipped", "outputs": {k: str(v) for k, v in paths.items()}}
    result = analyze(source, cfg, client=client)
    timings = result.timings
    t = time.perf_counter()
    layers = [result.enhancement, result.labels] + ([result.rgb] if result.rgb is not None else [])
    grid, crs, transform = _to_output_grid(source, cfg, *layers)
    polygons = _polygons(source, cfg, grid[1], crs, transform)
    timings["georeference"] = time.perf_counter() - t
    t = time.perf_counter()
    _write_products(paths, grid, crs, transform, polygons, result, cfg)
    timings["write"] = time.perf_counter() - t
    timings["total"] = sum(timings.values())
    summary = _summary(result, cfg, paths)
    write_json(paths["run"], summary)  # last: its presence marks the scene complete
    return summary


def _write_products(paths: dict[str, Path], grid: list[np.ndarray], crs: Any, transform: Any, polygons: dict[int, Any],
                    result: Analysis, cfg: DetectConfig) -> None:  # fmt: skip
    tags = {
        "method": cfg.method,
        "units": cfg.units,
        "parameters": json.dumps(cfg.to_dict()),
        "software": f"hyperplex {__version__}",
        "source": result.source.path.name,
        "geometry": "ortho" if crs is not None else "sensor",
    }
    write_cog(paths["enhancement"], grid[0], crs=crs, transform=transform, nodata=np.nan,
              description=f"CH4 enhancement ({cfg.units})", tags=tags)  # fmt: skip
    write_cog(paths["plumes_raster"], grid[1].astype(np.uint16), crs=crs, transform=transform, nodata=0,
              description="plume id (0 = none)", tags=tags)  # fmt: skip
    features = _features(result.plumes, polygons)
    write_geojson(paths["plumes_vector"], features, {"method": cfg.method, "units": cfg.units})
    _write_quicklook(paths["quicklook"], grid, cfg, result.source, 0.5 * result.found.threshold)


def _summary(result: Analysis, cfg: DetectConfig, paths: dict[str, Path]) -> dict[str, Any]:
    source, found = result.source, result.found
    return {
        "scene": source.stem,
        "status": "complete",
        "input": str(source.path),
        "kind": source.kind,
        "method": cfg.method,
        "units": cfg.units,
        "parameters": cfg.to_dict(),
        "version": __version__,
        "bands_used": source.channels[result.bands].wavelengths.round(3).tolist(),
        "masked_pixels": result.masks.counts(),
        "background": {"median": found.background[0], "sigma": found.background[1], "threshold": found.threshold},
        "ime_method": "plume-excluded, albedo-corrected matched filter over the plume region grown by 3 px",
        "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
        "plume_count": len(result.plumes),
        "plumes": result.plumes,
        "rejected": result.rejected,
        "outputs": {k: str(v) for k, v in paths.items()},
    }


def _write_quicklook(path: Path, grid: list[np.ndarray], cfg: DetectConfig, source: SceneSource, lo: float) -> None:
    """RGB with the enhancement above ``lo`` overlaid and plume outlines."""
    enh, labels = grid[0], grid[1]
    rgb = rgb_image(grid[2]) if len(grid) > 2 else np.zeros((*enh.shape, 3), np.float32)
    finite = enh[np.isfinite(enh)]
    hi = float(np.percentile(finite, 99.9)) if finite.size else 1.0
    write_quicklook(path, rgb, overlay=enh, overlay_range=(max(lo, 1e-6), max(hi, lo + 1e-6)),
                    overlay_label=f"CH4 enhancement ({cfg.units})", outlines=labels,
                    title=f"{source.stem} - {cfg.method}")  # fmt: skip
