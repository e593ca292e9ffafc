"""True-colour quicklooks, optionally with an enhancement overlay, plume outlines and a colour bar."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import numpy as np

from hyperplex.common.arrays import materialize
from hyperplex.common.atomic import atomic_path
from hyperplex.common.channels import ChannelSet
from hyperplex.geo.image_ops import bounding_boxes

__all__ = [
    "RGB_NM",
    "colorize",
    "compose_map",
    "rgb_image",
    "stretch",
    "true_color",
    "write_plume_map",
    "write_quicklook",
]

#: Band centres used for red, green and blue.
RGB_NM = (640.0, 550.0, 460.0)
_MAX_PIXELS = 1000  # longest side drawn in a quicklook


def stretch(band: np.ndarray, low: float = 2.0, high: float = 98.0) -> np.ndarray:
    """Linear stretch of the ``low``-``high`` percentile range to [0, 1] (NaN-aware)."""
    finite = band[np.isfinite(band)]
    if finite.size == 0:
        return np.zeros_like(band, dtype=np.float32)
    lo, hi = np.percentile(finite, [low, high])
    return np.clip((band - lo) / max(hi - lo, 1e-12), 0.0, 1.0).astype(np.float32)


def true_color(cube: Any, channels: ChannelSet) -> np.ndarray:
    """RGB image ``(H, W, 3)`` in [0, 1] from the bands nearest 640/550/460 nm (2-98 % stretch).

    Args:
        cube: ``(C, H, W)`` radiance or reflectance (any supported array type; only 3 bands are read).
        channels: The cube's channels (wavelengths required).

    Returns:
        float32 RGB; no-data pixels are black.
    """
    bands = np.stack([materialize(cube[channels.nearest(w)]).astype(np.float32) for w in RGB_NM])
    return rgb_image(bands)


def rgb_image(bands: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` display RGB in [0, 1] from red, green, blue bands ``(3, H, W)``; no-data pixels black."""
    rgb = np.stack([stretch(b) for b in bands], axis=-1)
    rgb[~np.isfinite(bands).all(axis=0)] = 0.0
    return rgb


def write_quicklook(
    path: str | Path,
    rgb: np.ndarray,
    *,
    overlay: np.ndarray | None = None,
    overlay_range: tuple[float, float] | None = None,
    overlay_label: str = "CH4 enhancement (ppm·m)",
    outlines: np.ndarray | None = None,
    title: str | None = None,
) -> Path:
    """Write a PNG: RGB background, an optional semi-transparent overlay with colour bar, outlines.

    Args:
        path: Output PNG (written atomically).
        rgb: ``(H, W, 3)`` in [0, 1].
        overlay: ``(H, W)`` values to overlay (NaN and values below the range start are transparent).
        overlay_range: Colour scale limits; default the overlay's 90th-99.8th percentiles (floored at 0).
        overlay_label: Colour bar label.
        outlines: ``(H, W)`` integer labels whose boundaries are drawn.
        title: Figure title.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    step = max(1, -(-max(rgb.shape[:2]) // _MAX_PIXELS))  # a screen-sized figure needs no more pixels
    rgb = rgb[::step, ::step]
    overlay = None if overlay is None else overlay[::step, ::step]
    outlines = None if outlines is None else outlines[::step, ::step]
    h, w = rgb.shape[:2]
    fig, ax = plt.subplots(figsize=(8, 8 * h / max(w, 1) + 0.6), dpi=110)
    ax.imshow(rgb, interpolation="nearest")
    if overlay is not None:
        vmin, vmax = overlay_range or _overlay_range(overlay)
        shown = np.ma.masked_where(~np.isfinite(overlay) | (overlay < vmin), overlay)
        im = ax.imshow(shown, cmap="plasma", vmin=vmin, vmax=vmax, alpha=0.75, interpolation="nearest")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02, label=overlay_label)
    if outlines is not None and np.any(outlines > 0):
        ax.contour(outlines > 0, levels=[0.5], colors="cyan", linewidths=0.8)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def _overlay_range(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [90.0, 99.8])
    return float(max(lo, 0.0)), float(max(hi, lo + 1e-6))


# ---------------------------------------------------------------- plume map (fast, full scene size)

_PLASMA = np.array([[13, 8, 135], [126, 3, 168], [204, 71, 120], [248, 149, 64], [240, 249, 33]], np.float32) / 255
_OUTLINE = np.array([0.0, 1.0, 1.0], np.float32)
_PANEL_PX = 300  # width of the inset column
_INSETS = 4


def colorize(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Plasma colours ``(..., 3)`` float32 of ``values`` scaled from ``lo`` to ``hi``."""
    f = np.clip((np.asarray(values, np.float32) - lo) / max(hi - lo, 1e-12), 0.0, 1.0) * (len(_PLASMA) - 1)
    i = np.minimum(f.astype(np.int64), len(_PLASMA) - 2)
    w = (f - i)[..., None]
    return _PLASMA[i] * (1 - w) + _PLASMA[i + 1] * w


def _boundaries(labels: np.ndarray) -> np.ndarray:
    """Pixels of a labelled region that touch another label (4-neighbourhood)."""
    edge = np.zeros(labels.shape, dtype=bool)
    edge[1:] |= labels[1:] != labels[:-1]
    edge[:-1] |= labels[:-1] != labels[1:]
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    return edge & (labels > 0)


def compose_map(rgb: np.ndarray, values: np.ndarray, labels: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """RGB with the enhancement above ``lo`` painted in plasma (opaque inside plumes) and plume outlines.

    Only the painted pixels are blended (a small share of a scene), so this is one pass over the image.
    """
    out = (rgb * np.float32(0.8 * 255)).astype(np.uint8)  # a dimmed background lets the plumes stand out
    with np.errstate(invalid="ignore"):
        rows, cols = np.nonzero(values >= lo)
    alpha = np.where(labels[rows, cols] > 0, np.float32(0.9), np.float32(0.6))[:, None]
    painted = out[rows, cols] * (1 - alpha) + colorize(values[rows, cols], lo, hi) * (255 * alpha)
    out[rows, cols] = np.clip(painted, 0, 255).astype(np.uint8)
    out[_boundaries(labels)] = (_OUTLINE * 255).astype(np.uint8)
    return out


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def _label(draw: Any, xy: tuple[float, float], text: str, size: int = 13) -> None:
    """Text on a dark box, for legibility on any background."""
    font = _font(size)
    box = draw.textbbox(xy, text, font=font)
    draw.rectangle((box[0] - 2, box[1] - 1, box[2] + 2, box[3] + 1), fill=(0, 0, 0))
    draw.text(xy, text, fill=(255, 255, 255), font=font)


def _scale_bar(draw: Any, height: int, pixel_m: float | None) -> None:
    """A scale bar of a round length in km at the lower left."""
    if not pixel_m or not np.isfinite(pixel_m):
        return
    km = next((k for k in (1, 2, 5, 10, 20, 50, 100) if k * 1000 / pixel_m >= 60), 100)
    length = km * 1000 / pixel_m
    y = height - 30
    draw.rectangle((10, y, 10 + length, y + 5), fill=(255, 255, 255), outline=(0, 0, 0))
    _label(draw, (10, y - 18), f"{km} km")


def _colour_bar(draw: Any, x0: int, y0: int, lo: float, hi: float, units: str) -> None:
    """Horizontal colour bar with its range and units."""
    steps = 200
    colours = colorize(np.linspace(lo, hi, steps), lo, hi)
    for i, c in enumerate((colours * 255).astype(int)):
        draw.line((x0 + i, y0, x0 + i, y0 + 12), fill=tuple(c))
    fmt = "{:.0f}" if units == "ppm·m" else "{:.3g}"
    _label(draw, (x0, y0 + 16), f"{fmt.format(lo)} - {fmt.format(hi)} {units}", size=12)


def _strength(plume: dict[str, Any]) -> float:
    ime = plume.get("ime_kg")
    return float(ime) if ime is not None else float(plume.get("max_ppmm") or plume.get("max_score") or 0.0)


def _tag(plume: dict[str, Any]) -> str:
    """Short label: id and IME (or the peak score)."""
    if plume.get("ime_kg") is not None:
        return f"#{plume['id']} {plume['ime_kg']:.0f} kg"
    if plume.get("max_score") is not None:
        return f"#{plume['id']} max {plume['max_score']:.3g}"
    return f"#{plume['id']}"


def _inset(image: np.ndarray, box: tuple[slice, slice], size: int) -> Any:
    """Square crop around a plume's box (8 px margin), enlarged to ``size`` px (nearest neighbour)."""
    from PIL import Image

    (r, c), (h, w) = (box[0].start, box[1].start), image.shape[:2]
    side = max(box[0].stop - r, box[1].stop - c) + 16
    r0 = int(np.clip((r + box[0].stop) // 2 - side // 2, 0, max(h - side, 0)))
    c0 = int(np.clip((c + box[1].stop) // 2 - side // 2, 0, max(w - side, 0)))
    crop = image[r0 : r0 + side, c0 : c0 + side]
    return Image.fromarray(crop).resize((size, size), Image.Resampling.NEAREST), side


def _draw_insets(canvas: Any, image: np.ndarray, boxes: dict, plumes: list[dict[str, Any]], x0: int, y0: int,
                 size: int, pixel_m: float | None) -> int:  # fmt: skip
    """Zoomed views of the strongest plumes in a column; returns the y below the last one."""
    from PIL import ImageDraw

    draw = ImageDraw.Draw(canvas)
    y = y0
    for plume in sorted(plumes, key=_strength, reverse=True)[:_INSETS]:
        if plume["id"] not in boxes:
            continue
        tile, side = _inset(image, boxes[plume["id"]], size)
        canvas.paste(tile, (x0, y + 18))
        span = f", {side * pixel_m / 1000:.1f} km wide" if pixel_m else ""
        _label(draw, (x0, y), f"{_tag(plume)}{span}", size=12)
        y += size + 24
    return y


def write_plume_map(
    path: str | Path,
    rgb: np.ndarray,
    values: np.ndarray,
    labels: np.ndarray,
    plumes: list[dict[str, Any]],
    *,
    lo: float,
    units: str = "ppm·m",
    pixel_m: float | None = None,
    title: str = "",
    corners: tuple[str, str] | None = None,
) -> Path:
    """Write a full-resolution plume map PNG a scientist can read at full scene size.

    The enhancement over the RGB, plume outlines, id and IME labels by each plume, a scale bar, a colour
    bar up to the plumes' peaks and zoomed insets of the strongest plumes. Drawn with numpy and Pillow
    (no Matplotlib), about 0.1-0.3 s for a full EMIT scene.

    Args:
        path: Output PNG (written atomically).
        rgb: ``(H, W, 3)`` in [0, 1].
        values: ``(H, W)`` enhancement (or score); NaN is transparent.
        labels: ``(H, W)`` plume ids (0 = none), matching ``plumes[i]["id"]``.
        plumes: Plume attributes (``id``, ``ime_kg``, ``max_ppmm`` or ``max_score``).
        lo: Lowest value painted (the delineation floor); the colour range ends at the highest plume peak.
        units: Units of ``values``.
        pixel_m: Ground pixel size in m (scale bar and inset widths); None: no scale bar.
        title: Text at the top.
        corners: Texts for the upper-left and lower-right corners (e.g. their lon/lat).

    Returns:
        The path written.
    """
    from PIL import Image, ImageDraw

    peaks = [p.get("max_ppmm") if p.get("max_ppmm") is not None else p.get("max_score") for p in plumes]
    finite = values[np.isfinite(values)]
    hi = max([v for v in peaks if v is not None], default=float(np.percentile(finite, 99.9)) if finite.size else 1.0)
    hi = max(hi, lo * 1.01 + 1e-9)
    image = compose_map(rgb, values, labels, lo, hi)
    h, w = image.shape[:2]
    boxes = bounding_boxes(labels)
    size = min(_PANEL_PX - 20, max(140, (h - 80) // _INSETS - 24))
    canvas = Image.new("RGB", (w + _PANEL_PX, max(h, 40 + _INSETS * (size + 24) + 60) + 24), (24, 24, 24))
    canvas.paste(Image.fromarray(image), (0, 24))
    draw = ImageDraw.Draw(canvas)
    _label(draw, (4, 4), title, size=14)
    for p in plumes:
        if p["id"] in boxes:
            r, c = boxes[p["id"]]
            _label(draw, (min(c.stop + 3, w - 60), 24 + max(r.start - 4, 0)), _tag(p), size=12)
    _scale_bar(draw, h + 24, pixel_m)
    if corners:
        _label(draw, (4, 28), corners[0], size=11)
        _label(draw, (max(w - 170, 0), h + 4), corners[1], size=11)
    y = _draw_insets(canvas, image, boxes, plumes, w + 10, 30, size, pixel_m)
    _colour_bar(draw, w + 10, y + 6, lo, hi, units)
    with atomic_path(path) as tmp:  # zlib's run-length strategy: 0.20 s and 4 % smaller than its default's 0.28 s
        canvas.save(tmp, format="PNG", compress_level=1, compress_type=zlib.Z_RLE)
    return Path(path)
