"""Per-plume attributes: vetting, confidence, size, mass, location."""

from __future__ import annotations

from typing import Any

import numpy as np

from hyperplex.geo.detect.background_filter import background_filter
from hyperplex.geo.detect.config import DetectConfig
from hyperplex.geo.detect.delineate import Delineation
from hyperplex.geo.detect.emission import emission_rate
from hyperplex.geo.detect.ime import debiased_enhancement
from hyperplex.geo.detect.label_growth import expand_labels_near
from hyperplex.geo.detect.source import SceneSource
from hyperplex.geo.detect.uncertainty import enhancement_sigma, ime_sigma_kg
from hyperplex.geo.detect.vetting import candidate_features, confidence, feature_window, is_rejected
from hyperplex.geo.geodesy import cell_area_m2, ime_kg
from hyperplex.geo.image_ops import bounding_boxes
from hyperplex.geo.methane.stats_capture import CapturedStats

__all__ = ["describe_plumes", "ground_size_problem", "peak_and_mean", "pixel_lonlat_area"]

_IME_GROW_PX = 3  # the IME region extends this far beyond the detected plume (faint tails)


def pixel_lonlat_area(
    source: SceneSource, rows: np.ndarray, cols: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lon, lat and ground area (m²) of the given pixels; NaN where the grid is not georeferenced."""
    if source.lat is not None:
        lat, lon = source.lat[rows, cols], source.lon[rows, cols]
        gt = source.transform
        return lon, lat, np.asarray(cell_area_m2(gt[1], gt[5], lat), dtype=np.float64)
    nan = np.full(rows.shape, np.nan)
    if source.transform is None:
        return nan, nan, nan
    if source.crs is None:  # only an in-memory cube given a pixel size is a metric grid without CRS
        metric = source.kind == "array"
        return nan, nan, np.full(rows.shape, abs(source.transform[1] * source.transform[5]) if metric else np.nan)
    from affine import Affine
    from rasterio.crs import CRS
    from rasterio.warp import transform as warp

    aff = Affine.from_gdal(*source.transform)
    xs, ys = aff @ (cols + 0.5, rows + 0.5)
    crs = CRS.from_user_input(source.crs)
    lon, lat = (xs, ys) if crs.is_geographic else map(np.asarray, warp(crs, "EPSG:4326", xs, ys))
    area = cell_area_m2(aff.a, aff.e, lat) if crs.is_geographic else np.full(rows.shape, abs(aff.a * aff.e))
    return np.asarray(lon), np.asarray(lat), np.asarray(area, dtype=np.float64)


def ground_size_problem(source: SceneSource) -> str | None:
    """Why the scene's pixels have no ground size (so no plume area, mass or emission rate), or None.

    A GeoTIFF or ENVI cube without a CRS has pixel coordinates only; an in-memory cube needs ``pixel_size_m``.
    """
    if source.lat is not None and source.transform is not None:
        return None
    if source.kind == "array":
        return None if source.transform is not None else "no ground pixel size (pass pixel_size_m)"
    if source.crs is None or source.transform is None:
        return "no ground pixel size: the file has no CRS (pixel coordinates only)"
    return None


def _pixels(labels: np.ndarray, index: int, box: tuple[slice, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the pixels labelled ``index``, found inside its bounding ``box``."""
    rows, cols = np.nonzero(labels[box] == index)
    return rows + box[0].start, cols + box[1].start


def _ime(
    unbiased: np.ndarray, sigma: np.ndarray, rows: np.ndarray, cols: np.ndarray, source: SceneSource
) -> dict[str, Any]:
    """IME (kg) of the region's pixels and its 1 sigma; None for both, with the reason, where areas are unknown."""
    _, _, area = pixel_lonlat_area(source, rows, cols)
    values = unbiased[rows, cols]
    if not np.isfinite(area).all():
        reason = ground_size_problem(source) or "a pixel of the plume region has no ground area"
        return {"ime_kg": None, "ime_sigma_kg": None, "ime_null_reason": reason}
    return {"ime_kg": ime_kg(np.where(np.isfinite(values), values, 0.0), area),
            "ime_sigma_kg": ime_sigma_kg(sigma[rows, cols], area), "ime_null_reason": None}  # fmt: skip


def _emission(attrs: dict[str, Any], cfg: DetectConfig) -> dict[str, Any]:
    """Emission rate fields (kg/h, 1 sigma, U_eff); None without a wind speed, a mass or an area."""
    out: dict[str, Any] = {"emission_rate_kg_h": None, "emission_rate_sigma_kg_h": None, "u_eff_m_s": None}
    if cfg.wind_speed is None or attrs["ime_kg"] is None or not attrs.get("area_m2"):
        return out
    q = emission_rate(attrs["ime_kg"], attrs["ime_sigma_kg"], attrs["area_m2"], cfg.wind_speed, cfg.wind_speed_sigma)
    return {"emission_rate_kg_h": q.rate_kg_h, "emission_rate_sigma_kg_h": q.sigma_kg_h, "u_eff_m_s": q.u_eff_m_s}


def _attributes(
    pid: int, enh: np.ndarray, rows: np.ndarray, cols: np.ndarray, source: SceneSource, score: bool
) -> dict[str, Any]:
    values = enh[rows, cols]
    lon, lat, area = pixel_lonlat_area(source, rows, cols)
    out: dict[str, Any] = {
        "id": pid,
        "pixels": int(rows.size),
        "area_m2": float(np.nansum(area)) if np.isfinite(area).any() else None,
        "centroid_lon": float(np.nanmean(lon)) if np.isfinite(lon).any() else None,
        "centroid_lat": float(np.nanmean(lat)) if np.isfinite(lat).any() else None,
        "bbox": [float(np.nanmin(lon)), float(np.nanmin(lat)), float(np.nanmax(lon)), float(np.nanmax(lat))]
        if np.isfinite(lon).any() else None,
        "sensor_bbox": [int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())],
    }  # fmt: skip
    if score:
        out.update(max_score=float(np.nanmax(values)), mean_score=float(np.nanmean(values)),
                   max_ppmm=None, mean_ppmm=None)  # fmt: skip
    else:
        out.update(max_ppmm=float(np.nanmax(values)), mean_ppmm=float(np.nanmean(values)))
    return out


def peak_and_mean(plume: dict[str, Any]) -> tuple[float, float]:
    """A plume's largest and mean value in its map's units: ``max_ppmm``/``mean_ppmm``, else the scores."""
    if plume.get("max_ppmm") is not None:
        return plume["max_ppmm"], plume["mean_ppmm"]
    return plume.get("max_score", float("nan")), plume.get("mean_score", float("nan"))


def describe_plumes(
    found: Delineation,
    enh: np.ndarray,
    cube: np.ndarray,
    source: SceneSource,
    filt: np.ndarray,
    excluded: np.ndarray,
    cfg: DetectConfig,
    captured: list[CapturedStats] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], np.ndarray, np.ndarray]:
    """Vet the candidates and describe the kept plumes.

    ``captured``: the column statistics the filter run published (see :func:`background_filter`), so that the
    plume-free filter needs no second pass over the cube.

    Returns:
        ``(plumes, rejected, labels, sigma)``: attribute dicts of kept plumes (ids 1..n), of rejected
        candidates (with the reason and probability), the uint16 label raster of kept plumes, and the
        per-pixel 1-sigma enhancement uncertainty in ppm·m (:mod:`hyperplex.geo.detect.uncertainty`).
    """
    from hyperplex.geo.methane import target_spectrum

    ch = source.channels[filt]
    template = target_spectrum(ch.wavelengths, ch.fwhm)
    labels = np.zeros(enh.shape, dtype=np.uint16)
    plumes, rejected = [], []
    score = cfg.method_spec.is_score
    grown = expand_labels_near(found.labels, _IME_GROW_PX)
    regions = grown * ~excluded
    plume_free = ~excluded & (grown == 0)
    ime_group = cfg.group or "column"  # the IME's matched filter is per column unless the run asks for tiles
    column_filter = background_filter(cube, template, plume_free, captured=captured)  # the IME's filter, the sigma
    unbiased = debiased_enhancement(
        cube, template, regions > 0, plume_free, group=ime_group, column_filter=column_filter
    )
    sigma = enhancement_sigma(cube, template, plume_free, column_filter=column_filter)
    boxes, grown_boxes = bounding_boxes(found.labels), bounding_boxes(regions)
    for index in range(1, len(found.peaks) + 1):
        box = boxes[index]
        window = feature_window(box, enh.shape)
        features = candidate_features(index, found.labels, enh, cube, template, excluded, found.background[1], window)
        bg_sigma = found.background[1]
        features["peak_snr"] = found.peaks[index - 1] / bg_sigma if bg_sigma > 0 else float("inf")
        rows, cols = _pixels(found.labels, index, box)
        features["pixels"] = int(rows.size)
        reason = is_rejected(features, cfg.delineation, cfg.method)
        conf, label = confidence(features, cfg.method)
        pid = len(plumes) + 1 if reason is None else -(len(rejected) + 1)
        attrs = _attributes(pid, enh, rows, cols, source, score)
        region = _pixels(regions, index, grown_boxes[index]) if index in grown_boxes else (rows[:0], cols[:0])
        attrs.update(_ime(unbiased, sigma, *region, source))
        attrs.update(_emission(attrs, cfg))
        attrs.update(smoothed_peak=found.peaks[index - 1], confidence=label, confidence_score=conf,
                     **{k: round(v, 4) if isinstance(v, float) else v for k, v in features.items()})  # fmt: skip
        if reason is None:
            labels[rows, cols] = pid
            plumes.append(attrs)
        else:
            rejected.append({**attrs, "id": None, "reason": reason})
    return plumes, rejected, labels, sigma
