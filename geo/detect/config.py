"""Every knob of the methane detection pipeline, with the defaults the CLI shows.

The CLI's options are named like these fields and take their defaults from here;
:meth:`DetectConfig.from_options` builds a configuration from such flat options. The methods come from
:mod:`hyperplex.geo.methane.registry`, imported on first use (it imports the filters' package).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from hyperplex.common.errors import InvalidParameterError
from hyperplex.common.ranges import check_fields, ranged

if TYPE_CHECKING:
    from hyperplex.geo.methane.registry import Method

__all__ = ["DelineationConfig", "DetectConfig", "MaskConfig"]


def _check_window(name: str, window: tuple[float, float]) -> None:
    lo, hi = window
    if not 0 < lo < hi:
        raise InvalidParameterError(f"`{name}` must be (min, max) nm with 0 < min < max; got {window}.")


@dataclass
class MaskConfig:
    """Pixels excluded from the filter statistics and blanked (NaN) in the enhancement map.

    Attributes:
        saturation_threshold: A pixel is saturated when any band in ``saturation_window`` exceeds this
            radiance (uW/cm²/sr/nm; mag1c's default).
        saturation_window: Wavelength range checked for saturation, nm.
        saturation_dilate: Grow saturated areas by this many pixels (bright sources bleed).
        flare_threshold: Radiance at 2389 nm above which a pixel is a flare (emit-ghg's test).
        flare_dilate: Grow flares by this many pixels.
        dark_fraction: Pixels whose mean radiance in the filter window is below this fraction of the
            scene median are dark (water, shadow): every filter's output is noise there.
        dark_dilate: Grow dark areas by this many pixels (mixed shoreline pixels).
        l2a_mask: Optional EMIT L2A MASK granule; its cloud, cirrus and water flags are excluded.
    """

    saturation_threshold: float = ranged(6.0, 0, lo_open=True)
    saturation_window: tuple[float, float] = (1945.0, 2485.0)
    saturation_dilate: int = ranged(3, 0)
    flare_threshold: float = ranged(1.5, 0, lo_open=True)
    flare_dilate: int = ranged(3, 0)
    dark_fraction: float = ranged(0.25, 0, 1)
    dark_dilate: int = ranged(2, 0)
    l2a_mask: str | None = None

    def __post_init__(self) -> None:
        check_fields(self)
        _check_window("saturation_window", self.saturation_window)


@dataclass
class DelineationConfig:
    """Plume delineation in the spirit of the EMIT GHG workflow, plus statistical vetting.

    Attributes:
        sigma: Gaussian smoothing of the enhancement before thresholding, pixels.
        threshold: Smoothed-enhancement threshold, ppm·m (score units for CEM/ACE); the effective
            threshold is the larger of this and ``background_k`` robust standard deviations.
        background_k: Threshold in robust background standard deviations of the smoothed map.
        low_fraction: Hysteresis: plumes extend down to this fraction of the threshold.
        min_peak: Smallest smoothed peak a plume may have, ppm·m.
        min_pixels: Smallest plume, pixels.
        min_probability: Candidates whose calibrated plume probability (a logistic model over the
            vetting features, fitted on the tuning scene family: :mod:`hyperplex.geo.detect.calibration`)
            is below this are rejected; they stay in run.json with their probability.
        min_spectral_score: Optional hand-set floor on the spectral score (-1: off; the probability
            already weighs it).
        min_snr: Optional hand-set floor on the mean SNR (0: off).
        vet: Apply the rejection tests (off: keep every candidate, still scored).
    """

    sigma: float = ranged(1.5, 0)
    threshold: float = ranged(100.0, 0)
    background_k: float = ranged(4.0, 0)
    low_fraction: float = ranged(0.5, 0, 1, lo_open=True)
    min_peak: float = ranged(250.0, 0)
    min_pixels: int = ranged(10, 1)
    min_probability: float = ranged(0.5, 0, 1)
    min_spectral_score: float = ranged(-1.0, -1, 1)
    min_snr: float = ranged(0.0, 0)
    vet: bool = True

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass
class DetectConfig:
    """Configuration of one detection run.

    Attributes:
        method: A registered method (:func:`hyperplex.geo.methane.registry.list_methods`).
        window: Wavelength window of the filter bands, nm.
        bands: Use only this many bands of the window (None: all), chosen by ``band_strategy``.
        band_strategy: 'highest-transmittance', 'highest-variance' or 'evenly-spaced'.
        group: Statistics per detector 'column' (EMIT's operational choice) or per 'tile'; None: the
            method's own default (column for MF and Mag1c, tile for CEM and ACE; Mag1c-SAS is per tile).
            The mass (IME) estimate is per column unless this is 'tile'.
        ortho: Orthorectify outputs through the GLT (EMIT); False keeps sensor geometry.
        overwrite: Recompute scenes whose outputs are already complete.
        masks: Masking options.
        delineation: Plume options.
        chunk_lines: Lines read per chunk (bounds memory).
        chunk_tasks: In a batch on a dask cluster, run scenes one after another with each scene's line
            chunks read as tasks on the cluster (few large scenes), instead of one task per scene.
        method_options: Extra keyword options of the method's function (e.g. a learned method's weights).
        wind_speed: 10 m wind speed, m/s, for emission rates by the IME method
            (:mod:`hyperplex.geo.detect.emission`); None: no rates (run.json says why).
        wind_speed_sigma: 1-sigma uncertainty of ``wind_speed``, m/s.
    """

    method: str = "mag1c"
    window: tuple[float, float] = (2122.0, 2488.0)
    bands: int | None = ranged(None, 3)
    band_strategy: str = "highest-transmittance"
    group: str | None = None
    ortho: bool = True
    overwrite: bool = False
    masks: MaskConfig = field(default_factory=MaskConfig)
    delineation: DelineationConfig = field(default_factory=DelineationConfig)
    chunk_lines: int = ranged(128, 1)
    chunk_tasks: bool = False
    method_options: dict[str, Any] = field(default_factory=dict)
    wind_speed: float | None = ranged(None, 0)
    wind_speed_sigma: float = ranged(0.0, 0)

    def __post_init__(self) -> None:
        spec = self.method_spec  # raises for an unknown method, listing the registered ones
        spec.check_group(self.group)
        if self.method_options:
            spec.check_options(self.method_options)
        check_fields(self)
        _check_window("window", self.window)

    @classmethod
    def from_options(cls, **options: Any) -> DetectConfig:
        """Build from flat options named like the fields of the three configuration classes (the CLI's).

        Fields not given keep their defaults; ``masks`` and ``delineation`` are built from their fields.

        Raises:
            InvalidParameterError: For an option that is no field, or a bad value.
        """
        parts: dict[str, Any] = {}
        for key, part in (("masks", MaskConfig), ("delineation", DelineationConfig)):
            names = {f.name for f in fields(part)}
            parts[key] = part(**{k: options.pop(k) for k in list(options) if k in names})
        unknown = sorted(set(options) - {f.name for f in fields(cls)})
        if unknown:
            raise InvalidParameterError(f"Unknown detection options {unknown}.")
        return cls(**options, **parts)

    @property
    def method_spec(self) -> Method:
        """The registry entry of :attr:`method`."""
        from hyperplex.geo.methane.registry import get_method

        return get_method(self.method)

    @property
    def units(self) -> str:
        """Units of the enhancement map: ``"ppm·m"`` or ``"score"``."""
        return self.method_spec.units

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, for run.json and GeoTIFF tags."""
        return asdict(self)
