"""Generator settings of the synthetic EMIT scene, and two scene families kept apart for detection studies.

:class:`SceneSettings` holds the *physics* choices of :func:`hyperplex.geo.synth.emit_scene` (how the
surface, noise, plumes, absorption and instrument are modelled); its defaults reproduce the generator's
original behaviour exactly. :data:`FAMILIES` names two settings that differ in every choice, so a
detector tuned on one family can be checked on scenes it was not tuned on:

- ``tuning``: three smooth endmembers, EMIT-like white noise, smooth albedo, elongated and puff plumes,
  linearised (``exp(k c)``) absorption, nominal band centres, no striping, carbonate look-alikes;
- ``evaluation``: a second spectral library (clay, dry vegetation, sand, asphalt), spectrally correlated
  and stronger noise, rough albedo texture, puffs, elongated *and* fragmented plumes, exact LUT
  Beer-Lambert absorption, band centres shifted by up to +-1 nm per detector-column group, column
  striping, and look-alike pads absorbing at 2260 and 2330 nm.

:func:`family_scene` makes scene ``index`` of a family (plume scenes and methane-free scenes with
look-alikes and dark water), reproducibly; the two families use disjoint seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hyperplex.common.errors import InvalidParameterError

__all__ = ["FAMILIES", "PLUME_SHAPES", "SceneSettings", "family_scene", "family_scene_kwargs"]

#: Plume shapes :class:`SceneSettings` can draw from.
PLUME_SHAPES = ("elongated", "puff", "fragmented")
_ABSORPTION = ("lut", "linear")
_SURFACES = ("soil-veg-rock", "clay-grass-sand-asphalt")
_NOISE = ("emit", "emit-correlated")
_LOOKALIKES = ("carbonate", "pads-2260-2330")


@dataclass(frozen=True)
class SceneSettings:
    """How :func:`~hyperplex.geo.synth.emit_scene` models the scene (the defaults: the original generator).

    Attributes:
        surfaces: Spectral library: 'soil-veg-rock' (3 smooth endmembers) or 'clay-grass-sand-asphalt'
            (4 endmembers with clay, cellulose and hydrocarbon features in the SWIR).
        noise_model: 'emit' (white, NEdL = A sqrt(B + L) + C) or 'emit-correlated' (NEdL x 1.25, 40 %
            of the variance correlated across neighbouring bands).
        albedo_sigma_px: Correlation length of the albedo field, pixels (smaller: rougher texture).
        albedo_speckle: Relative per-pixel (uncorrelated) albedo variation.
        plume_shapes: Shapes drawn uniformly per plume from :data:`PLUME_SHAPES`.
        absorption: 'lut' (exact band-integrated LUT transmittance, log-linear in c) or 'linear'
            (``exp(k c)`` with the mag1c unit absorption ``k``: exactly the filters' model).
        srf_shift_nm: The true band centres differ from the reported ones by up to this much (uniform,
            one shift per group of detector columns); the file still reports the nominal centres.
        srf_groups: Number of detector-column groups with their own centre shift.
        striping: Relative standard deviation of per-column additive SWIR offsets (detector striping).
        lookalike: Spectral signature of look-alike surfaces: 'carbonate' (broad 2335 nm band) or
            'pads-2260-2330' (narrower absorptions at 2260 and 2330 nm, e.g. well pads and tarps).
    """

    surfaces: str = "soil-veg-rock"
    noise_model: str = "emit"
    albedo_sigma_px: float = 6.0
    albedo_speckle: float = 0.03
    plume_shapes: tuple[str, ...] = ("elongated",)
    absorption: str = "lut"
    srf_shift_nm: float = 0.0
    srf_groups: int = 4
    striping: float = 0.0
    lookalike: str = "carbonate"

    def __post_init__(self) -> None:
        for name, allowed in (("surfaces", _SURFACES), ("noise_model", _NOISE), ("absorption", _ABSORPTION),
                              ("lookalike", _LOOKALIKES)):  # fmt: skip
            if getattr(self, name) not in allowed:
                raise InvalidParameterError(
                    f"SceneSettings.{name} must be one of {allowed}; got {getattr(self, name)!r}."
                )
        if not self.plume_shapes or set(self.plume_shapes) - set(PLUME_SHAPES):
            raise InvalidParameterError(f"SceneSettings.plume_shapes must be a non-empty subset of {PLUME_SHAPES}.")
        if self.albedo_sigma_px <= 0 or self.albedo_speckle < 0 or self.srf_shift_nm < 0 or self.striping < 0:
            raise InvalidParameterError("SceneSettings: albedo_sigma_px must be > 0; speckle, shift, striping >= 0.")
        if self.srf_groups < 1:
            raise InvalidParameterError(f"SceneSettings.srf_groups must be >= 1; got {self.srf_groups}.")

    @property
    def is_default(self) -> bool:
        """True for the original generator's settings."""
        return self == SceneSettings()


#: The two scene families of the detection benchmark (see the module docstring).
FAMILIES: dict[str, SceneSettings] = {
    "tuning": SceneSettings(plume_shapes=("elongated", "puff"), absorption="linear"),
    "evaluation": SceneSettings(
        surfaces="clay-grass-sand-asphalt",
        noise_model="emit-correlated",
        albedo_sigma_px=2.0,
        albedo_speckle=0.06,
        plume_shapes=PLUME_SHAPES,
        absorption="lut",
        srf_shift_nm=1.0,
        striping=0.004,
        lookalike="pads-2260-2330",
    ),
}
_SEED_BASE = {"tuning": 10_000, "evaluation": 20_000}


def family_scene_kwargs(family: str, index: int, *, methane_free: bool = False, size: int = 200) -> dict[str, Any]:
    """The :func:`~hyperplex.geo.synth.emit_scene` arguments of scene ``index`` of ``family``.

    Plume scenes hold 6 plumes with peaks drawn from 300-2500 ppm·m and cross-wind sigmas of 2-7 px,
    plus one look-alike patch and, every other scene, a water body. Methane-free scenes hold 4
    look-alike patches and 2 water bodies.

    Raises:
        InvalidParameterError: For an unknown family or a negative index.
    """
    if family not in FAMILIES:
        raise InvalidParameterError(f"Unknown scene family {family!r}; choose one of {sorted(FAMILIES)}.")
    if index < 0:
        raise InvalidParameterError(f"Scene index must be >= 0; got {index}.")
    seed = _SEED_BASE[family] + 2 * index + int(methane_free)
    common = {"lines": size, "samples": size, "seed": seed, "settings": FAMILIES[family]}
    if family == "evaluation":
        common["albedo_variation"] = 0.2
    if methane_free:
        return {**common, "plumes": 0, "lookalikes": 4, "water": 2}
    return {**common, "plumes": 6, "plume_strength": (300.0, 2500.0), "plume_size": (2.0, 7.0),
            "lookalikes": 1, "water": index % 2}  # fmt: skip


def family_scene(family: str, index: int, *, methane_free: bool = False, size: int = 200) -> Any:
    """Scene ``index`` of ``family`` (an :class:`~hyperplex.geo.synth.EmitScene`); see :func:`family_scene_kwargs`."""
    from hyperplex.geo.synth.emit import emit_scene

    return emit_scene(**family_scene_kwargs(family, index, methane_free=methane_free, size=size))
