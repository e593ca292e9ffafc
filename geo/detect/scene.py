"""Methane detection on one scene, end to end: read, mask, filter, delineate, vet, georeference, write."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from hyperplex.common import warm_memory
from hyperplex.common._version import __version__
from hyperplex.common.arrays import index_slice
from hyperplex.common.errors import NoValidDataError
from hyperplex.common.progress import progress
from hyperplex.geo.detect.block_kernel import BandPositions, block_kernel, read_block, scan_lines
from hyperplex.geo.detect.config import DetectConfig
from hyperplex.geo.detect.delineate import Delineation, delineate
from hyperplex.geo.detect.emission import UEFF_CALIBRATION
from hyperplex.geo.detect.faults import fault_point
from hyperplex.geo.detect.filter_bands import filter_bands
from hyperplex.geo.detect.masks import SceneMasks
from hyperplex.geo.detect.outputs import (
    clean_stale_temporaries,
    fingerprint,
    is_complete,
    new_run_id,
    product_paths,
    refuse_other_method,
    remove_stale_products,
    write_json,
)
from hyperplex.geo.detect.plume_table import describe_plumes, ground_size_problem
from hyperplex.geo.detect.scene_products import ProductWriter
from hyperplex.geo.detect.source import SceneSource, open_source, prefetch
from hyperplex.geo.io.emit import EmitReader
from hyperplex.geo.methane.stats_capture import CapturedStats, capture_column_stats
from hyperplex.geo.quicklook import RGB_NM

__all__ = ["Analysis", "analyze", "detect_scene"]

_FLARE_NM = 2389.486


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
    """Read the needed bands chunk by chunk (as dask tasks with a ``client``): filter cube, RGB, masks.

    The filter cube is ``(bands, lines, samples)`` stored pixel-major (the band-first view of a C-ordered
    ``(lines, samples, bands)`` array): granules are stored so, and the filters' compiled kernels read a
    pixel's bands together. EMIT granules read on this machine go through one compiled pass per block
    (:mod:`.block_kernel`, with numba); the rest through numpy.
    """
    needed = np.unique(np.concatenate([filt, *aux.values()]).astype(int))
    pos = {b: i for i, b in enumerate(needed)}
    h, w = source.shape
    pixels = warm_memory.empty((h, w, filt.size), np.float32)  # reserved at start-up by the CLI (warm_start)
    rgb = np.zeros((3, h, w), dtype=np.float32) if aux["rgb"].size else None
    masks = SceneMasks((h, w))
    at = {name: np.array([pos[b] for b in bands], int) for name, bands in (("filt", filt), *aux.items())}
    if source.kind == "emit" and client is None and block_kernel() is not None:
        _read_compiled(source, needed, at, cfg, pixels, rgb, masks)
    else:
        _read_numpy(source, needed, at, cfg, client, pixels.transpose(2, 0, 1), rgb, masks)
    masks.finish(cfg.masks)
    return pixels.transpose(2, 0, 1), rgb, masks


def _read_compiled(source: SceneSource, needed: np.ndarray, at: dict[str, np.ndarray], cfg: DetectConfig,
                   pixels: np.ndarray, rgb: np.ndarray | None, masks: SceneMasks) -> None:  # fmt: skip
    """The read of an EMIT granule through the compiled pass: stored lines (contiguous float32) or blocks."""
    flare = int(at["flare"][0]) if at["flare"].size else -1
    positions = BandPositions(at["filt"], at["rgb"], at["saturation"], flare)
    desc = f"read {_short(source.stem)}"
    with EmitReader(source.path) as reader:
        raw = reader.raw_rows
        if raw is not None and raw.dtype == np.dtype(np.float32):
            blocks = reader.row_blocks(raw.lines_per_read)
            scans = scan_lines(raw, blocks, positions.through(needed), pixels, rgb, masks, cfg.masks)
            for _ in progress(scans, total=len(blocks), desc=desc, unit="chunk"):
                pass
            return
        blocks = reader.row_blocks(cfg.chunk_lines)
        for rows, block in progress(prefetch(lambda rows: reader.read(rows, needed), blocks), total=len(blocks),
                                    desc=desc, unit="chunk"):  # fmt: skip
            read_block(block.transpose(1, 2, 0), rows.start, positions, pixels, rgb, masks, cfg.masks)


def _read_numpy(source: SceneSource, needed: np.ndarray, at: dict[str, np.ndarray], cfg: DetectConfig,
                client: Any, cube: np.ndarray, rgb: np.ndarray | None, masks: SceneMasks) -> None:  # fmt: skip
    """The read through numpy: band-first blocks, copies and :meth:`SceneMasks.update`."""
    chunks = source.iter_bands(needed, cfg.chunk_lines, client)
    total = len(source.row_blocks(cfg.chunk_lines))
    take = {name: index_slice(idx) for name, idx in at.items()}
    for rows, block in progress(chunks, total=total, desc=f"read {_short(source.stem)}", unit="chunk"):
        cube[:, rows] = block[take["filt"]]
        if rgb is not None:
            rgb[:, rows] = block[take["rgb"]]
        sat = block[take["saturation"]] if at["saturation"].size else block[:0]
        flare = block[int(at["flare"][0])] if at["flare"].size else np.zeros(block.shape[1:], np.float32)
        masks.update(rows, cube[:, rows], sat, flare, cfg.masks)


def _units_hint(masks: SceneMasks, cfg: DetectConfig) -> str:
    """A sentence when most data pixels exceed the radiance thresholds: the data are in other units."""
    data = ~masks.layers["fill"]
    hot = (masks.layers["saturated"] | masks.layers["flare"]) & data
    if not data.any() or hot.sum() < 0.5 * data.sum():
        return ""
    level = float(np.nanmedian(masks.brightness[data]))
    return (
        f" {hot.sum()} of {data.sum()} data pixels exceed the saturation ({cfg.masks.saturation_threshold:g}) or flare "
        f"({cfg.masks.flare_threshold:g}) radiance thresholds (median {level:.4g}): the data are probably not radiance "
        "in uW/cm2/sr/nm (scaled integers or reflectance). Convert them, or set --saturation-threshold and "
        "--flare-threshold for their units."
    )


#: Fewest valid pixels per detector column for per-column statistics (one line has no variance at all).
MIN_COLUMN_PIXELS = 2


def _require_statistics(source: SceneSource, cfg: DetectConfig, excluded: np.ndarray, bands: int) -> None:
    """Refuse a scene too small for background statistics (a 1x1 scene, one line, a few pixels).

    The filters estimate a mean and a covariance of the ``bands`` filter bands from the valid pixels, and
    delineation a background level and spread: with no more valid pixels than bands the covariance is
    singular, and a column of one pixel has no variance, so the map would be zero or NaN, not a result.

    Raises:
        NoValidDataError: Naming the file, the count found and the count needed.
    """
    valid = ~excluded
    count, need = int(valid.sum()), bands + 1
    if count < need:
        raise NoValidDataError(
            f"{source.path}: too few pixels for background statistics: {count} valid pixel(s) in "
            f"{valid.shape[0]}x{valid.shape[1]}, need >= {need} (more than the {bands} filter bands); "
            "use a larger scene (or a narrower --window)."
        )
    spec = cfg.method_spec
    per_column = (cfg.group or (spec.grouping[0] if spec.grouping else None)) == "column"
    if per_column and int(valid.sum(axis=0).max()) < MIN_COLUMN_PIXELS:
        raise NoValidDataError(
            f"{source.path}: too few lines for per-column background statistics: {valid.shape[0]} line(s), need "
            f">= {MIN_COLUMN_PIXELS} valid pixels in a detector column; pass --group tile or a longer scene."
        )


def _warn_no_ground_size(source: SceneSource) -> None:
    """Warn when plume masses (IME) and emission rates will be null: the grid has no ground pixel size."""
    reason = ground_size_problem(source)
    if reason:
        warnings.warn(f"{source.path}: {reason}: plume masses (ime_kg) and emission rates are null.",
                      UserWarning, stacklevel=3)  # fmt: skip


def _short(stem: str, width: int = 30) -> str:
    """A progress label that tells scenes of one day apart: EMIT's constant prefix dropped, the tail kept."""
    stem = stem.removeprefix("EMIT_L1B_RAD_001_")
    return stem if len(stem) <= width else "…" + stem[-(width - 1) :]


def _run_filter(cube: np.ndarray, source: SceneSource, filt: np.ndarray, excluded: np.ndarray,
                cfg: DetectConfig) -> np.ndarray:  # fmt: skip
    """The method's map on the filter bands (already chosen: ``window=None``), NaN where excluded."""
    ch = source.channels[filt]
    method = cfg.method_spec
    values = method(cube, ch.wavelengths, ch.fwhm, mask=excluded, window=None, group=cfg.group, **cfg.method_options)
    enh = np.asarray(values, dtype=np.float32)
    enh[excluded] = np.nan
    return enh


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
        uncertainty: ``(H, W)`` float32 1-sigma enhancement uncertainty, ppm·m (``_ch4unc.tif``).
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
    uncertainty: np.ndarray | None = None


def analyze(source: SceneSource, config: DetectConfig | None = None, *, client: Any = None) -> Analysis:
    """Read, mask, filter, delineate and vet one scene, without writing anything.

    Args:
        source: From :func:`open_source` (a file) or :meth:`SceneSource.from_array` (in memory).
        config: Options.
        client: A dask.distributed client: the scene's line chunks are then read as tasks on it.

    Returns:
        The analysis in the data's geometry.

    Raises:
        NoValidDataError: If every pixel is fill or masked, or too few pixels are left for the statistics
            (more valid pixels than filter bands, and two per detector column for per-column statistics).
    """
    cfg = config or DetectConfig()
    return _describe(_map_scene(source, cfg, client), cfg)


@dataclass
class _Mapped:
    """A scene read and filtered: the map, and what delineating and vetting its plumes needs."""

    source: SceneSource
    bands: np.ndarray
    cube: np.ndarray
    rgb: np.ndarray | None
    masks: SceneMasks
    enhancement: np.ndarray
    captured: list[CapturedStats]
    timings: dict[str, float]


def _map_scene(source: SceneSource, cfg: DetectConfig, client: Any) -> _Mapped:
    """Read, mask and filter (see :func:`analyze`)."""
    try:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        filt, aux = filter_bands(source.channels, cfg, source.path), _aux_bands(source, cfg)
        cfg.method_spec.start_preload()  # e.g. compiled kernels load while the scene is read
        cube, rgb, masks = _read(source, filt, aux, cfg, client)
        timings["read"] = time.perf_counter() - t0
        fault_point("read")
        excluded = masks.excluded
        hint = _units_hint(masks, cfg)
        if excluded.all():
            raise NoValidDataError(f"{source.path}: no valid pixels (all fill or masked: {masks.counts()}).{hint}")
        if hint:
            warnings.warn(f"{source.path}:{hint}", UserWarning, stacklevel=3)
        _require_statistics(source, cfg, excluded, filt.size)
        _warn_no_ground_size(source)
        t = time.perf_counter()
        with capture_column_stats() as captured:  # reused by the plume-free filter (no second statistics pass)
            enh = _run_filter(cube, source, filt, excluded, cfg)
        timings["filter"] = time.perf_counter() - t
        fault_point("filtered")
        return _Mapped(source, filt, cube, rgb, masks, enh, captured, timings)
    finally:
        warm_memory.release()  # buffers reserved for this scene and not used (see warm_start)


def _describe(mapped: _Mapped, cfg: DetectConfig) -> Analysis:
    """Delineate and vet the plumes of a mapped scene (see :func:`analyze`)."""
    t = time.perf_counter()
    m, excluded = mapped, mapped.masks.excluded
    found = _delineate(m.enhancement, ~excluded, cfg)
    plumes, rejected, labels, sigma = describe_plumes(found, m.enhancement, m.cube, m.source, m.bands, excluded, cfg,
                                                      m.captured)  # fmt: skip
    m.timings["delineate"] = time.perf_counter() - t
    return Analysis(m.source, m.bands, m.enhancement, labels, plumes, rejected, m.masks, m.rgb, found, m.timings, sigma)


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
        NoValidDataError: If every pixel is fill or masked, or too few are left for the statistics.
        OutputExistsError: If ``out_dir`` holds this scene's products of another method (without ``overwrite``).
    """
    cfg = config or DetectConfig()
    source = open_source(path)
    paths = product_paths(Path(out_dir), source.stem, score=cfg.method_spec.is_score)
    clean_stale_temporaries(Path(out_dir), source.stem)
    if not cfg.overwrite:
        refuse_other_method(paths, cfg.method, source.stem)
    if not cfg.overwrite and is_complete(paths, cfg.to_dict()):
        remove_stale_products(paths, source.stem)  # a run killed after its run.json, before its cleanup
        return {"scene": source.stem, "status": "skipped", "outputs": {k: str(v) for k, v in paths.items()}}
    fault_point("opened")
    mapped = _map_scene(source, cfg, client)
    run_id = new_run_id()
    with ProductWriter(paths, source, cfg, run_id, mapped.enhancement.shape) as writer:
        writer.start_map(mapped.enhancement, mapped.rgb)  # while the plumes are delineated and vetted
        result = _describe(mapped, cfg)
        result.timings.update(writer.finish(result.labels, result.uncertainty, result.plumes,
                                            0.5 * result.found.threshold))  # fmt: skip
    timings = result.timings
    timings["total"] = sum(timings.values())
    summary = _summary(result, cfg, paths)
    summary.update(run_id=run_id, products={k: fingerprint(p) for k, p in paths.items() if k != "run"})
    write_json(paths["run"], summary)  # last: its presence marks the scene complete
    fault_point("run")
    remove_stale_products(paths, source.stem)  # another method's map, only now that this run is complete
    return summary


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
        "ime_method": _ime_note(source),
        "uncertainty_method": "1 sigma = 1 / (R sqrt(t' C^-1 t)) per pixel, column-wise plume-free statistics",
        "emission_rate_method": _emission_note(cfg),
        "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
        "plume_count": len(result.plumes),
        "plumes": result.plumes,
        "rejected": result.rejected,
        "outputs": {k: str(v) for k, v in paths.items()},
    }


def _ime_note(source: SceneSource) -> str:
    """How plume masses (IME) were estimated, or why there are none."""
    reason = ground_size_problem(source)
    if reason:
        return f"none: {reason}; ime_kg, ime_sigma_kg and emission rates are null"
    return "plume-excluded, albedo-corrected matched filter over the plume region grown by 3 px"


def _emission_note(cfg: DetectConfig) -> str:
    """How emission rates were estimated, or why there are none."""
    if cfg.wind_speed is None:
        return "none: no 10 m wind speed given (--wind-speed M/S); emission_rate_kg_h is null"
    return (f"IME method Q = U_eff IME / sqrt(A), {UEFF_CALIBRATION}, "
            f"U10 = {cfg.wind_speed} +- {cfg.wind_speed_sigma} m/s")  # fmt: skip
