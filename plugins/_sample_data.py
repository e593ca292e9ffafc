"""npe2 sample data: a synthetic EMIT scene with methane plumes, and a synthetic multiplex tissue.

Both are generated with fixed seeds by ``hyperplex.geo.synth`` and ``hyperplex.bio`` (no downloads),
so what the widgets find on them can be checked against the known truth.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hyperplex.plugins._layers import LayerDataTuple, LayerStack, image_layer_data

__all__ = ["emit_sample", "emit_stack", "tissue_sample", "tissue_stack"]


def emit_stack(lines: int = 128, samples: int = 128, seed: int = 0) -> tuple[LayerStack, Any]:
    """The synthetic EMIT radiance cube as a stack ``(285, lines, samples)``, plus the scene (truth).

    Args:
        lines: Downtrack size.
        samples: Crosstrack size.
        seed: Random seed.

    Returns:
        ``(stack, scene)``.
    """
    from hyperplex.geo.synth import emit_scene

    scene = emit_scene(lines=lines, samples=samples, seed=seed)
    cube = np.ascontiguousarray(np.moveaxis(scene.radiance, -1, 0))  # (bands, lines, samples)
    stack = LayerStack(
        [cube],
        scene.channels,
        name="EMIT radiance (synthetic)",
        pixel_size=(float(np.sqrt(scene.pixel_area_m2)),) * 2,
        units="meter",
        extra={"domain": "geo", "fill_value": -9999.0},
    )
    return stack, scene


def _truth_layers(scene: Any, scale: tuple[float, float]) -> list[LayerDataTuple]:
    spatial = {"scale": scale, "units": ("meter", "meter"), "visible": False}
    enhancement = (scene.truth, {"name": "CH4 truth (ppm·m)", "colormap": "magma", **spatial}, "image")
    labels = (scene.plume_labels.astype(np.int32), {"name": "plume truth", **spatial}, "labels")
    return [enhancement, labels]


def emit_sample() -> list[LayerDataTuple]:
    """Layers for the synthetic EMIT scene: the radiance cube (band slider) and the hidden truth."""
    stack, scene = emit_stack()
    return image_layer_data(stack) + _truth_layers(scene, stack.pixel_size)


def tissue_stack(size: int = 256, seed: int = 0) -> LayerStack:
    """The synthetic multiplex tissue (marker channels, pyramid) as a stack.

    Args:
        size: Image height and width in pixels.
        seed: Random seed.

    Returns:
        The stack.
    """
    from hyperplex.bio import synthetic_tissue

    image = synthetic_tissue(size=size, seed=seed)
    return LayerStack(
        list(image.levels),
        image.channels,
        name="tissue (synthetic)",
        pixel_size=image.pixel_size_um,
        units="micrometer" if image.pixel_size_um is not None else None,
        extra={"domain": "bio"},
    )


def tissue_sample() -> list[LayerDataTuple]:
    """Layers for the synthetic multiplex tissue: one additive layer per marker."""
    return image_layer_data(tissue_stack())
