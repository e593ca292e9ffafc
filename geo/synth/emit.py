"""A synthetic EMIT L1B radiance scene with methane plumes of known strength.

Follows the recipe in the team's methane study (§7): LUT-based SWIR radiance, per-pixel albedo and
mixtures of three surface spectra, detector-column gains, an EMIT-like noise model, and CH4 plumes
injected by Beer-Lambert with log-linear interpolation through the mag1c LUT. Optional hazards the
detectors must survive: fill columns, saturated pixels, gas flares, dark water and surfaces that
absorb near 2330 nm (carbonate-like look-alikes). Everything is deterministic given ``seed``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from hyperplex.common.channels import ChannelSet
from hyperplex.common.errors import InvalidParameterError
from hyperplex.common.progress import progress
from hyperplex.common.ranges import Range
from hyperplex.geo.geodesy import cell_area_m2, ime_kg
from hyperplex.geo.nodata import FILL_VALUE
from hyperplex.geo.synth.geometry import SceneGeometry, make_geometry
from hyperplex.geo.synth.optics import Optics, make_optics
from hyperplex.geo.synth.settings import SceneSettings
from hyperplex.geo.synth.spectra import emit_band_grid

__all__ = ["FILL_VALUE", "SCENE_RANGES", "EmitScene", "emit_scene", "pixel_area"]

#: Allowed values of the numeric arguments of :func:`emit_scene` (``hyperplex synth emit`` uses them too).
SCENE_RANGES: dict[str, Range] = {
    "lines": Range(16, 4096),
    "samples": Range(16, 4096),
    "plumes": Range(0, 100),
    "plume_strength": Range(0),
    "plume_size": Range(0, lo_open=True),
    "seed": Range(0),
    "fill_columns": Range(0),
    "saturated": Range(0),
    "flares": Range(0),
    "water": Range(0),
    "lookalikes": Range(0),
    "glt_rotation": Range(-360, 360),
    "noise": Range(0),
    "albedo_variation": Range(0, 1),
    "column_gain_sigma": Range(0, 1),
}

_TRUTH_FLOOR_PPMM = 20.0  # enhancements below this are set to zero in the truth
# the last two streams are drawn only by non-default SceneSettings (the original streams stay as they were)
_STREAMS = ("water", "lookalike", "plumes", "surface", "noise", "artifacts", "shapes", "instrument")
_TEXTURE_BASIS = 24  # number of smooth spectral basis functions for per-pixel variety


@dataclass
class EmitScene:
    """An EMIT-like L1B radiance scene and its truth, in sensor geometry.

    Attributes:
        radiance: (downtrack, crosstrack, bands) float32, uW/cm^2/sr/nm, fill -9999.
        wavelengths: Band centres in nm, float32.
        fwhm: Band FWHM in nm, float32.
        good_wavelengths: 1 for bands outside the deep water-vapour absorptions, uint8.
        truth: CH4 enhancement in ppm·m, (downtrack, crosstrack) float32.
        plume_labels: Plume id per pixel (0 = none), int16.
        plumes: One dict per plume: id, row, col, peak_ppmm, sigma_px, pixels, ime_kg, lon, lat, ...
        geometry: Pixel lon/lat/elevation and the GLT.
        masks: Boolean truth masks: ``fill``, ``saturated``, ``flare``, ``water``, ``lookalike``.
        params: The generator's arguments.
    """

    radiance: np.ndarray
    wavelengths: np.ndarray
    fwhm: np.ndarray
    good_wavelengths: np.ndarray
    truth: np.ndarray
    plume_labels: np.ndarray
    plumes: list[dict[str, Any]]
    geometry: SceneGeometry
    masks: dict[str, np.ndarray]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def channels(self) -> ChannelSet:
        """The bands as a ChannelSet."""
        return ChannelSet.from_wavelengths(self.wavelengths, self.fwhm, good=self.good_wavelengths.astype(bool))

    @property
    def pixel_area_m2(self) -> float:
        """Ground area of one pixel in m^2 (an ortho cell at the scene's mean latitude)."""
        return pixel_area(self.geometry)


def pixel_area(geo: SceneGeometry) -> float:
    """Ground area in m² of one ortho cell at the scene's mean latitude (sensor pixels map ~1:1 onto cells)."""
    gt = geo.geotransform
    return float(cell_area_m2(gt[1], gt[5], float(np.mean(geo.lat))))


def _range(value: float | tuple[float, float], name: str) -> tuple[float, float]:
    lo, hi = (value, value) if np.isscalar(value) else tuple(value)
    if not (0 <= lo <= hi):
        raise InvalidParameterError(f"`{name}` must be a number or (min, max) with 0 <= min <= max; got {value!r}.")
    return float(lo), float(hi)


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Spatially smooth noise scaled to zero mean, unit standard deviation."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape), sigma, mode="reflect")
    return (f - f.mean()) / (f.std() + 1e-12)


def _blobs(rng: np.random.Generator, shape: tuple[int, int], count: int, radius: tuple[float, float]) -> np.ndarray:
    """Boolean mask of ``count`` irregular blobs (thresholded smooth noise around random centres)."""
    mask = np.zeros(shape, dtype=bool)
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    for _ in range(count):
        r0, c0 = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        rad = rng.uniform(*radius)
        wobble = 1.0 + 0.25 * _smooth_field(rng, shape, max(rad / 2, 1.0))
        mask |= np.hypot(rr - r0, cc - c0) < rad * wobble
    return mask


def _place_plumes(
    rng: np.random.Generator,
    shape: tuple[int, int],
    count: int,
    strength: tuple[float, float],
    size: tuple[float, float],
    avoid: np.ndarray,
) -> list[dict[str, Any]]:
    """Random plume parameters, centres kept apart from each other, the border and ``avoid``."""
    plumes: list[dict[str, Any]] = []
    for _ in range(count * 200):
        if len(plumes) == count:
            break
        sigma = rng.uniform(*size)
        margin = 3 * sigma + 2
        if 2 * margin >= min(shape):
            raise InvalidParameterError(f"plume_size {size} is too large for a {shape} scene; use smaller plumes.")
        row, col = rng.uniform(margin, shape[0] - margin), rng.uniform(margin, shape[1] - margin)
        far = all(np.hypot(row - p["row"], col - p["col"]) > 3 * (sigma + p["sigma_px"]) + 6 for p in plumes)
        if far and not avoid[int(row), int(col)]:
            plumes.append(
                {
                    "row": float(row),
                    "col": float(col),
                    "amplitude_ppmm": float(rng.uniform(*strength)),
                    "sigma_px": float(sigma),
                    "elongation": float(rng.uniform(1.5, 2.5)),
                    "direction_deg": float(rng.uniform(0, 180)),
                }
            )
    if len(plumes) < count:
        raise InvalidParameterError(f"Could not fit {count} separated plumes in a {shape} scene; ask for fewer.")
    return plumes


def _assign_shapes(rng: np.random.Generator, plumes: list[dict[str, Any]], shapes: tuple[str, ...]) -> None:
    """Give each plume a shape (in place); a puff is a round Gaussian (elongation 1)."""
    for p in plumes:
        p["shape"] = shapes[0] if len(shapes) == 1 else str(rng.choice(shapes))
        if p["shape"] == "puff":
            p["elongation"] = 1.0


def _fragments(rng: np.random.Generator | None, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Soft 0-1 mask that breaks a plume into pieces (thresholded smooth noise)."""
    field_ = _smooth_field(rng, shape, max(sigma_px / 2.0, 1.5))
    return np.clip(2.0 * (field_ + 0.3), 0.0, 1.0)


def _render_plumes(
    plumes: list[dict[str, Any]], shape: tuple[int, int], rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Truth enhancement (ppm·m) and plume ids from elongated Gaussian plumes (puffs, fragments)."""
    rr, cc = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    truth = np.zeros(shape)
    labels = np.zeros(shape, dtype=np.int16)
    strongest = np.zeros(shape)  # where plumes overlap, a pixel belongs to the larger contribution
    for pid, p in enumerate(plumes, start=1):
        ang = np.deg2rad(p["direction_deg"])
        du, dv = rr - p["row"], cc - p["col"]
        along = du * np.cos(ang) + dv * np.sin(ang)
        across = -du * np.sin(ang) + dv * np.cos(ang)
        s = p["sigma_px"]
        c = p["amplitude_ppmm"] * np.exp(-0.5 * ((along / (s * p["elongation"])) ** 2 + (across / s) ** 2))
        if p.get("shape") == "fragmented":
            c *= _fragments(rng, shape, s)
        c[c < _TRUTH_FLOOR_PPMM] = 0.0
        labels[c > strongest] = pid
        np.maximum(strongest, c, out=strongest)
        truth += c
    return truth.astype(np.float32), labels


def _describe_plumes(scene_plumes: list[dict[str, Any]], truth: np.ndarray, labels: np.ndarray, geo: SceneGeometry,
                     pixel_area: float) -> None:  # fmt: skip
    """Add measured truth statistics and coordinates to each plume dict (in place)."""
    for pid, p in enumerate(scene_plumes, start=1):
        inside = labels == pid
        values = truth[inside]
        r, c = round(p["row"]), round(p["col"])
        p.update(
            id=pid,
            peak_ppmm=float(values.max()),
            pixels=int(inside.sum()),
            core_mean_ppmm=float(values[values >= 0.5 * values.max()].mean()),
            area_m2=float(inside.sum() * pixel_area),
            ime_kg=ime_kg(values, pixel_area),
            lon=float(geo.lon[r, c]),
            lat=float(geo.lat[r, c]),
        )


def _surface(
    rng: np.random.Generator, shape: tuple[int, int], variation: float, settings: SceneSettings, endmembers: int = 3
) -> dict[str, np.ndarray]:
    """Per-pixel surface parameters: albedo, endmember abundances, SWIR slope, spectral texture."""
    albedo = 1.0 + variation * _smooth_field(rng, shape, settings.albedo_sigma_px)
    albedo += settings.albedo_speckle * rng.standard_normal(shape)
    logits = np.stack([1.2 * _smooth_field(rng, shape, 10.0) for _ in range(endmembers)])
    abundance = np.exp(logits) / np.exp(logits).sum(axis=0)
    slope = 0.05 * _smooth_field(rng, shape, 8.0)
    texture = 0.01 * rng.standard_normal((_TEXTURE_BASIS, *shape))  # small per-pixel spectral variety
    return {"albedo": np.clip(albedo, 0.3, 1.6), "abundance": abundance, "slope": slope, "texture": texture}


def _texture_basis(wl: np.ndarray) -> np.ndarray:
    """Smooth spectral basis functions (Gaussian bumps across the spectrum), shape (K, B)."""
    centres = np.linspace(wl.min(), wl.max(), _TEXTURE_BASIS)
    width = (wl.max() - wl.min()) / _TEXTURE_BASIS
    return np.exp(-0.5 * ((wl[None, :] - centres[:, None]) / width) ** 2)


def _hazard_spectra(wl: np.ndarray) -> dict[str, np.ndarray]:
    """Spectral factors of the hazards (water darkening, flare emission) and the wavelengths."""
    water = 0.35 * np.exp(-(wl - 450.0) / 250.0) + 0.015
    flare = np.clip((wl - 1500.0) / 900.0, 0.0, None) ** 2 * 6.0  # hot-body emission rising into the SWIR
    return {"water": water, "flare": flare, "wl": wl}


def emit_scene(
    *,
    lines: int = 128,
    samples: int = 128,
    plumes: int = 3,
    plume_strength: float | tuple[float, float] = (1000.0, 3000.0),
    plume_size: float | tuple[float, float] = (3.0, 6.0),
    seed: int = 0,
    fill_columns: int = 0,
    saturated: int = 0,
    flares: int = 0,
    water: int = 0,
    lookalikes: int = 0,
    glt_rotation: float = 0.0,
    noise: float = 1.0,
    albedo_variation: float = 0.12,
    column_gain_sigma: float = 0.005,
    origin_lonlat: tuple[float, float] = (-103.9, 32.3),
    settings: SceneSettings | None = None,
) -> EmitScene:
    """Generate an EMIT-like L1B radiance scene with methane plumes of known enhancement.

    Args:
        lines: Downtrack size (EMIT: 1280).
        samples: Crosstrack size (EMIT: 1242).
        plumes: Number of CH4 plumes.
        plume_strength: Peak enhancement in ppm·m, or a (min, max) range to draw from.
        plume_size: Plume cross-wind Gaussian sigma in pixels (along-wind is 1.5-2.5x longer), or a range.
        seed: Random seed; the same arguments always give the same scene.
        fill_columns: Number of whole crosstrack columns set to the fill value (-9999).
        saturated: Number of small saturated hot spots (SWIR radiance clipped above 6).
        flares: Number of gas-flare pixels (radiance at 2389 nm > 1.5).
        water: Number of dark water bodies (where every filter's output is noise).
        lookalikes: Number of surface patches absorbing near 2335 nm (carbonate-like false-positive bait).
        glt_rotation: Angle in degrees between flight direction and north; non-zero rotates the GLT.
        noise: Multiplier on the instrument noise model (0 disables noise).
        albedo_variation: Relative standard deviation of the smooth surface brightness field. A
            matched filter without albedo correction retrieves brightness x enhancement, so its
            plume estimates scatter by about this much; Mag1c's albedo factor removes that.
        column_gain_sigma: Relative per-detector-column gain spread.
        origin_lonlat: Upper-left corner of the ortho grid in degrees.
        settings: How surfaces, noise, plume shapes, absorption and the instrument are modelled
            (:class:`~hyperplex.geo.synth.settings.SceneSettings`; None: the original generator).

    Returns:
        The scene and its truth.

    Raises:
        InvalidParameterError: For sizes or counts that cannot be honoured.
    """
    if lines < 16 or samples < 16:
        raise InvalidParameterError(f"Scene must be at least 16 x 16 pixels; got lines={lines}, samples={samples}.")
    params = {k: v for k, v in locals().items() if k not in ("params", "settings")}
    settings = settings or SceneSettings()
    params["settings"] = asdict(settings)
    for name, allowed in SCENE_RANGES.items():
        allowed.check(name, params[name])
    if fill_columns >= samples:
        raise InvalidParameterError(f"`fill_columns` must be less than `samples` ({samples}); got {fill_columns}.")
    # independent streams: changing e.g. the plume count leaves the surface and noise unchanged
    rng = dict(zip(_STREAMS, (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(len(_STREAMS)))))
    shape = (lines, samples)
    wl, fwhm = emit_band_grid()
    hazards = _hazard_spectra(wl.astype(np.float64))
    water_mask = _blobs(rng["water"], shape, water, (0.06 * min(shape), 0.12 * min(shape)))
    look_mask = _blobs(rng["lookalike"], shape, lookalikes, (0.03 * min(shape), 0.06 * min(shape))) & ~water_mask
    strength = _range(plume_strength, "plume_strength")
    if plumes and strength[0] <= 0:
        raise InvalidParameterError(f"`plume_strength` must be positive; got {plume_strength!r} (use plumes=0).")
    plume_list = _place_plumes(rng["plumes"], shape, plumes, strength, _range(plume_size, "plume_size"), water_mask)
    _assign_shapes(rng["shapes"], plume_list, settings.plume_shapes)
    truth, labels = _render_plumes(plume_list, shape, rng["shapes"])
    optics = make_optics(rng["instrument"], wl, fwhm, samples, settings)
    surface = _surface(rng["surface"], shape, albedo_variation, settings, optics.shapes.shape[0])
    elevation = 900.0 + 250.0 * _smooth_field(rng["surface"], shape, 20.0)
    geo = make_geometry(lines, samples, rotation_deg=glt_rotation, origin_lonlat=origin_lonlat, elevation=elevation)
    radiance = _radiance(rng["noise"], optics, surface, truth, water_mask, look_mask, hazards, noise, column_gain_sigma)
    masks = _inject_artifacts(rng["artifacts"], radiance, wl, fill_columns, saturated, flares, hazards, truth > 0)
    masks.update(water=water_mask, lookalike=look_mask)
    _describe_plumes(plume_list, truth, labels, geo, pixel_area(geo))
    good = np.ones(wl.size, dtype=np.uint8)
    good[((wl > 1340) & (wl < 1450)) | ((wl > 1790) & (wl < 1960))] = 0
    return EmitScene(radiance, wl, fwhm, good, truth, labels, plume_list, geo, masks, params)


def _radiance(
    rng: np.random.Generator,
    optics: Optics,
    surface: dict[str, np.ndarray],
    truth: np.ndarray,
    water: np.ndarray,
    lookalike: np.ndarray,
    hazards: dict[str, np.ndarray],
    noise: float,
    gain_sigma: float,
) -> np.ndarray:
    """Assemble radiance (lines, samples, bands) float32, block by block to bound memory."""
    lines, samples = truth.shape
    bands = optics.base.shape[1]
    basis = _texture_basis(hazards["wl"])  # (K, B)
    gain_rng = np.random.default_rng(rng.integers(2**63))
    gains = 1.0 + gain_sigma * (
        gain_rng.standard_normal((samples, 1)) + 0.5 * gain_rng.standard_normal((samples, bands))
    )
    base = optics.base[optics.column_group]  # (samples, B) radiance per unit reflectance
    out = np.empty((lines, samples, bands), dtype=np.float32)
    for start in progress(range(0, lines, 64), desc="synth radiance", unit="block", leave=False):
        rows = slice(start, min(start + 64, lines))
        block_rng = np.random.default_rng([int(rng.integers(2**31)), start])
        refl = np.einsum("mhw,mb->hwb", surface["abundance"][:, rows], optics.shapes)
        refl *= surface["albedo"][rows, :, None] * (
            1.0 + surface["slope"][rows, :, None] * (hazards["wl"] - 2300.0) / 1000.0
        )
        refl *= 1.0 + np.einsum("khw,kb->hwb", surface["texture"][:, rows], basis)
        refl = np.where(water[rows, :, None], refl * hazards["water"], refl)
        refl = np.where(lookalike[rows, :, None], refl * optics.lookalike, refl)
        x = refl * base[None] * gains[None] + optics.stripes[None]
        plume = truth[rows] > 0
        x[plume] *= optics.transmittance(truth[rows][plume], np.nonzero(plume)[1])
        if noise > 0:
            x += optics.noise(block_rng, x, noise)
        out[rows] = x
    return out


def _inject_artifacts(
    rng: np.random.Generator,
    radiance: np.ndarray,
    wl: np.ndarray,
    fill_columns: int,
    saturated: int,
    flares: int,
    hazards: dict[str, np.ndarray],
    avoid: np.ndarray,
) -> dict[str, np.ndarray]:
    """Fill columns, saturated spots and flares, written into ``radiance`` in place; returns their masks."""
    lines, samples, _ = radiance.shape
    masks = {name: np.zeros((lines, samples), dtype=bool) for name in ("fill", "saturated", "flare")}
    free = ~ndimage.binary_dilation(avoid, iterations=4)
    candidates = np.flatnonzero(free.ravel())
    for name, count in (("saturated", saturated), ("flare", flares)):
        if count > candidates.size:
            raise InvalidParameterError(f"Cannot place {count} {name} spots in a {lines} x {samples} scene; use fewer.")
        for idx in rng.choice(candidates, size=count, replace=False) if count else []:
            r, c = divmod(int(idx), samples)
            spot = (slice(max(r - 1, 0), r + 2), slice(max(c - 1, 0), c + 2)) if name == "saturated" else (r, c)
            masks[name][spot] = True
    swir = wl > 1000
    sat = radiance[masks["saturated"]]
    sat[:, swir] = np.minimum(sat[:, swir] * 8.0 + 4.0, 9.5)  # detector clipping near full well
    radiance[masks["saturated"]] = sat
    radiance[masks["flare"]] += hazards["flare"].astype(np.float32)
    if fill_columns:
        cols = rng.choice(samples, size=fill_columns, replace=False)
        radiance[:, cols, :] = FILL_VALUE
        masks["fill"][:, cols] = True
    return masks
