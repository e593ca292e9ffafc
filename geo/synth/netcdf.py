"""Write a synthetic scene in the exact NetCDF4 layout of an EMIT L1B RAD granule, plus its truth."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import h5netcdf
import numpy as np

from hyperplex.common._version import __version__
from hyperplex.common.atomic import atomic_path
from hyperplex.common.errors import InvalidParameterError
from hyperplex.geo.synth.emit import FILL_VALUE, EmitScene

__all__ = ["default_stem", "emit_global_attributes", "write_emit_scene"]

_WKT_4326 = (
    'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,AUTHORITY["EPSG","7030"]],'
    'AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],UNIT["degree",0.0174532925199433,'
    'AUTHORITY["EPSG","9122"]],AXIS["Latitude",NORTH],AXIS["Longitude",EAST],AUTHORITY["EPSG","4326"]]'
)


def _start_time(seed: int) -> dt.datetime:
    return dt.datetime(2025, 6, 1, 17, 0, 0) + dt.timedelta(minutes=int(seed) % 10_000)


def default_stem(seed: int) -> str:
    """An EMIT-style granule name for a synthetic scene: ``EMIT_L1B_RAD_001_<time>_<orbit>_<scene>``."""
    return (
        f"EMIT_L1B_RAD_001_{_start_time(seed):%Y%m%dT%H%M%S}_{2515200 + int(seed) % 100:07d}_{1 + int(seed) % 999:03d}"
    )


def emit_global_attributes(scene: EmitScene) -> dict[str, Any]:
    """Global attributes as the EMIT SDS writes them for L1B radiance."""
    geo = scene.geometry
    seed = int(scene.params.get("seed", 0))
    start = _start_time(seed)
    return {
        "ncei_template_version": "NCEI_NetCDF_Swath_Template_v2.0",
        "summary": (
            "The Earth Surface Mineral Dust Source Investigation (EMIT) is an Earth Ventures-Instrument (EVI-4) "
            "Mission. This file contains L1B at-sensor calibrated radiances. SYNTHETIC look-alike written by "
            f"hyperplex {__version__}; not an EMIT measurement."
        ),
        "keywords": "Imaging Spectroscopy, minerals, EMIT, dust, radiative forcing",
        "Conventions": "CF-1.63",
        "sensor": "EMIT (Earth Surface Mineral Dust Source Investigation)",
        "instrument": "EMIT",
        "platform": "ISS",
        "institution": "NASA Jet Propulsion Laboratory/California Institute of Technology",
        "license": "https://science.nasa.gov/earth-science/earth-science-data/data-information-policy/",
        "naming_authority": "LPDAAC",
        "date_created": dt.datetime(2025, 6, 2).isoformat(),
        "keywords_vocabulary": "NASA Global Change Master Directory (GCMD) Science Keywords",
        "stdname_vocabulary": "NetCDF Climate and Forecast (CF) Metadata Convention",
        "creator_name": "Jet Propulsion Laboratory/California Institute of Technology",
        "creator_url": "https://earth.jpl.nasa.gov/emit/",
        "project": "Earth Surface Mineral Dust Source Investigation",
        "project_url": "https://earth.jpl.nasa.gov/emit/",
        "publisher_name": "NASA LPDAAC",
        "publisher_url": "https://lpdaac.usgs.gov",
        "publisher_email": "lpdaac@usgs.gov",
        "identifier_product_doi_authority": "https://doi.org",
        "flight_line": f"emit{start:%Y%m%dt%H%M%S}_o{25152 + seed % 100:05d}_s000",
        "time_coverage_start": start.isoformat() + "+0000",
        "time_coverage_end": (start + dt.timedelta(seconds=12)).isoformat() + "+0000",
        "software_build_version": "010621",
        "software_delivery_version": "010621",
        "product_version": "V001",
        "history": f"hyperplex synth emit (seed={scene.params.get('seed')}), hyperplex {__version__}",
        "crosstrack_orientation": "as seen on ground",
        "easternmost_longitude": float(geo.lon.max()),
        "northernmost_latitude": float(geo.lat.max()),
        "westernmost_longitude": float(geo.lon.min()),
        "southernmost_latitude": float(geo.lat.min()),
        "spatialResolution": float(geo.geotransform[1]),
        "spatial_ref": _WKT_4326,
        "geotransform": np.asarray(geo.geotransform, dtype=np.float64),
        "day_night_flag": "Day",
        "title": "EMIT L1B At-Sensor Calibrated Radiance Data 60 m V001",
    }


def _variable(group: Any, name: str, dims: tuple[str, ...], data: np.ndarray, attrs: dict[str, Any], **kw: Any) -> None:
    var = group.create_variable(name, dims, data.dtype, **kw)
    var[...] = data
    for key, value in attrs.items():
        var.attrs[key] = value


def _write_granule(path: Path, scene: EmitScene, storage: dict[str, Any]) -> None:
    geo = scene.geometry
    lines, samples, bands = scene.radiance.shape
    with h5netcdf.File(path, "w") as f:
        f.dimensions = {"downtrack": lines, "crosstrack": samples, "bands": bands,
                        "ortho_y": geo.glt_x.shape[0], "ortho_x": geo.glt_x.shape[1]}  # fmt: skip
        for key, value in emit_global_attributes(scene).items():
            f.attrs[key] = value
        rad_attrs = {"long_name": "Radiance Data", "units": "uW/cm^2/SR/nm"}
        dims = ("downtrack", "crosstrack", "bands")
        _variable(f, "radiance", dims, scene.radiance, rad_attrs, fillvalue=np.float32(FILL_VALUE), **storage)
        sbp = f.create_group("sensor_band_parameters")
        _variable(sbp, "wavelengths", ("bands",), scene.wavelengths, {"long_name": "Wavelength Centers", "units": "nm"})
        _variable(sbp, "fwhm", ("bands",), scene.fwhm, {"long_name": "Full Width at Half Max", "units": "nm"})
        _variable(sbp, "good_wavelengths", ("bands",), scene.good_wavelengths,
                  {"long_name": "Wavelengths where reflectance is useable: 1 = good data, 0 = bad data",
                   "units": "unitless"})  # fmt: skip
        loc = f.create_group("location")
        fill = {"fillvalue": FILL_VALUE}
        _variable(loc, "lon", ("downtrack", "crosstrack"), geo.lon,
                  {"long_name": "Longitude (WGS-84)", "units": "degrees east"}, **fill)  # fmt: skip
        _variable(loc, "lat", ("downtrack", "crosstrack"), geo.lat,
                  {"long_name": "Latitude (WGS-84)", "units": "degrees north"}, **fill)  # fmt: skip
        _variable(loc, "elev", ("downtrack", "crosstrack"), geo.elev,
                  {"long_name": "Surface Elevation", "units": "m"}, **fill)  # fmt: skip
        glt = {"fillvalue": np.int32(0), "compression": "gzip", "compression_opts": 9}
        _variable(loc, "glt_x", ("ortho_y", "ortho_x"), geo.glt_x,
                  {"long_name": "GLT Sample Lookup", "units": "pixel location"}, **glt)  # fmt: skip
        _variable(loc, "glt_y", ("ortho_y", "ortho_x"), geo.glt_y,
                  {"long_name": "GLT Line Lookup", "units": "pixel location"}, **glt)  # fmt: skip


def _storage(scene: EmitScene, chunks: tuple[int, int, int] | None, compression: int | None) -> dict[str, Any]:
    """h5netcdf options for the radiance variable's layout."""
    if chunks is None:
        if compression is not None:
            raise InvalidParameterError("write_emit_scene: compression needs chunks=(lines, samples, bands).")
        return {}
    if len(chunks) != 3 or min(chunks) < 1:
        raise InvalidParameterError(f"write_emit_scene: chunks must be 3 positive sizes, got {chunks}.")
    chunks = tuple(min(int(c), int(n)) for c, n in zip(chunks, scene.radiance.shape))
    if compression is None:
        return {"chunks": chunks}
    if not 1 <= int(compression) <= 9:
        raise InvalidParameterError(f"write_emit_scene: compression is a gzip level 1-9, got {compression}.")
    return {"chunks": chunks, "compression": "gzip", "compression_opts": int(compression), "shuffle": True}


def _write_truth(path: Path, scene: EmitScene) -> None:
    lines, samples = scene.truth.shape
    with h5netcdf.File(path, "w") as f:
        f.dimensions = {"downtrack": lines, "crosstrack": samples}
        f.attrs["title"] = "hyperplex synthetic EMIT scene: truth in sensor geometry"
        dims = ("downtrack", "crosstrack")
        _variable(f, "ch4_enhancement", dims, scene.truth, {"long_name": "True CH4 enhancement", "units": "ppm·m"})
        _variable(f, "plume_id", dims, scene.plume_labels, {"long_name": "Plume id, 0 = no plume"})
        for name, mask in scene.masks.items():
            _variable(f, f"{name}_mask", dims, mask.astype(np.uint8), {"long_name": f"{name} pixels (truth)"})


def _truth_table(scene: EmitScene, stem: str) -> dict[str, Any]:
    params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in scene.params.items()}
    return {"scene": stem, "units": "ppm·m", "pixel_area_m2": scene.pixel_area_m2, "params": params,
            "plumes": scene.plumes}  # fmt: skip


def write_emit_scene(
    scene: EmitScene,
    out_dir: str | Path,
    stem: str | None = None,
    *,
    chunks: tuple[int, int, int] | None = None,
    compression: int | None = None,
) -> dict[str, Path]:
    """Write ``<stem>.nc`` (EMIT L1B RAD layout), ``<stem>_truth.nc`` and ``<stem>_truth.json``.

    Each file is written atomically.

    Args:
        scene: The scene from :func:`hyperplex.geo.synth.emit_scene`.
        out_dir: Output directory (created if missing).
        stem: File stem; default an EMIT-style granule name derived from the seed.
        chunks: Store radiance in chunks of ``(lines, samples, bands)`` (e.g. ``(64, 64, 285)``, as
            netCDF tools often write it); default contiguous.
        compression: With ``chunks``, a gzip level 1-9 (with the shuffle filter); default none.

    Returns:
        Paths keyed ``radiance``, ``truth`` and ``table``.
    """
    out = Path(out_dir)
    stem = stem or default_stem(int(scene.params.get("seed", 0)))
    paths = {"radiance": out / f"{stem}.nc", "truth": out / f"{stem}_truth.nc", "table": out / f"{stem}_truth.json"}
    with atomic_path(paths["radiance"]) as tmp:
        _write_granule(tmp, scene, _storage(scene, chunks, compression))
    with atomic_path(paths["truth"]) as tmp:
        _write_truth(tmp, scene)
    with atomic_path(paths["table"]) as tmp:
        tmp.write_text(json.dumps(_truth_table(scene, stem), indent=2))
    return paths
