"""Whole-slide H&E -> multiplex prediction with MIPHEI: a marker OME-Zarr and a per-cell table.

``predict_mif(he, out)`` runs a trained MIPHEI model over the slide in overlapping tiles (the library's
:func:`hyperplex.common.models.predict_markers` on each tile, blended with
:mod:`hyperplex.common.tiling`'s tapered weights), streaming final rows into a Zarr array in a work
folder beside ``out`` (``<out>.work``), so memory stays bounded for any slide size and an interrupted
run resumes without predicting finished tiles again. Then it writes ``out`` (OME-Zarr 0.5: one uint8
channel per marker, 0-255 = intensity 0-1 on the model's training scale, names, colours, pyramid, the
slide's pixel size) atomically, and ``<stem>.cells.csv`` with one row per cell (id, centroid, area, mean
predicted intensity and a positive call per marker) plus ``<stem>.cells.json`` (the thresholds: Otsu
over the cells' means per marker, and how the cells were found).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyperplex.common.channels import PALETTE, ChannelSet
from hyperplex.common.errors import ChannelMismatchError, InvalidParameterError, NoValidDataError

__all__ = ["DEFAULT_MODEL", "PredictMifResult", "load_mif_model", "marker_channels", "predict_mif", "predict_mif_steps"]

#: The preset predict-mif uses by default (shipped weights trained on synthetic tissue).
DEFAULT_MODEL = "miphei_small"


@dataclass
class PredictMifResult:
    """What a whole-slide prediction wrote.

    Attributes:
        zarr: The marker OME-Zarr.
        cells_csv: The per-cell table.
        cells_json: Thresholds and settings of the table.
        markers: The predicted markers.
        cells: Number of cells in the table.
        tiles_predicted: Tiles this call predicted (fewer than the total after a resume).
        thresholds: Marker -> threshold of the positive call (intensity, 0-1).
    """

    zarr: Path
    cells_csv: Path
    cells_json: Path
    markers: ChannelSet
    cells: int
    tiles_predicted: int
    thresholds: dict[str, float] = field(default_factory=dict)


def load_mif_model(source: str | os.PathLike[str] | None = None) -> Any:
    """A MIPHEI model with trained weights: a preset name with shipped weights, or a saved model file.

    Raises:
        InvalidParameterError: For a preset without trained weights (its predictions would be noise).
        DataNotFoundError: For a missing file.
    """
    from hyperplex.common.models import create_model, load_model, preset_info

    source = str(source or DEFAULT_MODEL)
    if source.endswith(".safetensors") or Path(source).is_file():
        model = load_model(source)
    elif not preset_info(source).pretrained:
        raise InvalidParameterError(
            f"`--model {source}` has no trained weights, so its markers would be noise; use a preset with "
            f"weights (`hyperplex models list --pretrained`, default {DEFAULT_MODEL}) or a trained model file."
        )
    else:
        model = create_model(source, pretrained=True)
    if getattr(model, "output_channels", None) is None or getattr(model, "in_chans", None) != 3:
        raise InvalidParameterError(f"`--model {source}` is not an H&E -> marker model (MIPHEI).")
    return model.eval()


def marker_channels(names: tuple[str, ...]) -> ChannelSet:
    """The predicted markers with display colours (the synthetic panel's where it names them)."""
    from hyperplex.bio.synth.panel import MARKERS

    known = {m.name: m.color for m in MARKERS}
    colors = [known.get(n, PALETTE[i % len(PALETTE)]) for i, n in enumerate(names)]
    return ChannelSet.from_names(names, colors=colors)


def _rgb_of(he: Any) -> tuple[Any, tuple[float, float] | None, str]:
    """The slide's ``(3, H, W)`` level 0, its pixel size (µm) and a source label."""
    from hyperplex.bio.rgb import is_rgb
    from hyperplex.common.image import MultiscaleImage

    if isinstance(he, (str, os.PathLike)):
        from hyperplex.bio.open import open_image

        he = open_image(he)
    if isinstance(he, MultiscaleImage):
        if not is_rgb(he):
            raise ChannelMismatchError(
                f"{he.path or he.name}: not an RGB H&E image ({he.count} channels {', '.join(he.channels.names[:4])}); "
                "predict-mif takes an RGB slide (OME-TIFF with SamplesPerPixel 3, RGB OME-Zarr, PNG/JPEG)."
            )
        return he.levels[0], he.pixel_size_um, str(he.path or he.name)
    data = he
    if data.ndim != 3 or data.shape[0] != 3:
        raise ChannelMismatchError(f"The H&E array must be (3, H, W); got {tuple(data.shape)}.")
    return data, None, "array"


def _check_size(rgb: Any, source: str, model: Any, tile: int) -> None:
    """Refuse a slide smaller than one patch of the model; warn when it is smaller than one tile.

    Raises:
        NoValidDataError: For a side shorter than the model's patch (16 pixels): the prediction would
            come from padding, not tissue.
    """
    height, width = int(rgb.shape[-2]), int(rgb.shape[-1])
    patch = int(getattr(model, "input_multiple", None) or 16)
    if min(height, width) < patch:
        raise NoValidDataError(
            f"{source}: the H&E image is {height}x{width} pixels, too few pixels for a prediction: need >= "
            f"{patch}x{patch} (one {patch}-pixel patch of the model); the markers would be predicted from padding."
        )
    if min(height, width) < tile:
        warnings.warn(f"{source}: the H&E image ({height}x{width} pixels) is smaller than one {tile}-pixel tile: "
                      "it is predicted from one padded tile, with less tissue context than the model was trained "
                      "with.", UserWarning, stacklevel=3)  # fmt: skip


def _rebased(steps: Generator, offset: int, total: int) -> Generator[tuple[int, int], None, Any]:
    """Re-yield ``(done, _)`` steps as ``(offset + done, total)``; return the generator's value."""
    try:
        while True:
            done, _ = next(steps)
            yield offset + done, total
    except StopIteration as stop:
        return stop.value


def predict_mif(he: Any, out: str | os.PathLike[str], **options: Any) -> PredictMifResult:
    """Predict multiplex markers for a whole H&E slide; see the module docstring and :func:`predict_mif_steps`.

    Shows progress bars (silenced by :func:`hyperplex.common.progress.quiet`).
    """
    from hyperplex.common.models.inference import run_steps

    return run_steps(predict_mif_steps(he, out, **options), desc="MIPHEI tiles, then cell blocks")


def predict_mif_steps(
    he: Any, out: str | os.PathLike[str], *, model: Any = None, tile: int | None = None, overlap: int | None = None,
    workers: int = 2, labels: Any = None, device: str | None = None, pixel_size_um: float | None = None,
) -> Generator[tuple[int, int], None, PredictMifResult]:  # fmt: skip
    """Generator form of :func:`predict_mif`: yields ``(done, total)``, counting tiles then cell blocks.

    Args:
        he: The slide: a path, an RGB :class:`~hyperplex.common.image.MultiscaleImage` or a ``(3, H, W)`` array.
        out: Output ``.ome.zarr``; the table is ``<stem>.cells.csv`` beside it.
        model: A preset name, a saved model file or a loaded model (default :data:`DEFAULT_MODEL`).
        tile: Tile side (a multiple of 16; default the model's training size).
        overlap: Pixels shared by neighbouring tiles (blended; default a quarter of the tile).
        workers: Threads reading tiles ahead of the model.
        labels: Cell labels ``(H, W)`` (path of a label image, or an array) instead of segmenting nuclei.
        device: ``cuda``, ``cpu`` ... (default: a GPU when there is one).
        pixel_size_um: The slide's pixel size when the file does not say it (default 0.5 µm for cells).

    Returns:
        The :class:`PredictMifResult`.

    Raises:
        ChannelMismatchError: If the slide is not RGB.
        NoValidDataError: If a side of the slide is shorter than one patch of the model (16 pixels).
        InvalidParameterError: For bad tile/overlap values, an untrained model, a resume with other settings.
    """
    from hyperplex.bio.cells import block_count
    from hyperplex.bio.predict_run import MifRun

    rgb, size, source = _rgb_of(he)
    size = size or ((pixel_size_um, pixel_size_um) if pixel_size_um else None)
    net = model if model is not None and not isinstance(model, (str, os.PathLike)) else load_mif_model(model)
    _check_size(rgb, source, net, int(tile or net.config.get("img_size", 256)))  # before any work folder
    run = MifRun(net, rgb, Path(out), source, size, tile, overlap, device)
    total = run.tile_count + block_count(run.height, run.width)
    predicted = yield from _rebased(run.tiles(workers), 0, total)
    zarr_path = run.write_zarr(marker_channels(tuple(net.output_channels.names)))
    csv_path, json_path, markers, count, thresholds = yield from _rebased(run.cells(labels), run.tile_count, total)
    return PredictMifResult(zarr_path, csv_path, json_path, markers, count, predicted, thresholds)
