"""``hyperplex`` subcommands contributed by hyperplex.geo: ``synth emit``, ``demo`` and ``methane``.

Detection options are declared once, in :data:`detection_options` and :data:`batch_options` (rasterio's
``rio/options.py`` pattern): each is named like a field of :class:`~hyperplex.geo.detect.config.DetectConfig`
or of its mask and delineation parts and takes that field's default, and
:meth:`DetectConfig.from_options` turns the parsed options into a configuration. ``--method`` offers the
methods of :mod:`hyperplex.geo.methane.registry`, read when click needs them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import click

from hyperplex.common.cli.errors import click_errors
from hyperplex.common.outdir import writable_dir
from hyperplex.common.ranges import field_range
from hyperplex.geo.detect.config import DelineationConfig, DetectConfig, MaskConfig

__all__ = [
    "LazyChoice", "batch_options", "demo", "detection_options", "methane", "plume_table", "synth_emit",
    "synth_methane_tiles",
]  # fmt: skip

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

_quiet = click.option("--quiet", "-q", is_flag=True, help="No progress bars, print only results.")


def _out_option(**kwargs: Any) -> Decorator:
    return click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), help="Output directory.",
                        **kwargs)  # fmt: skip


class LazyChoice(click.Choice):
    """A :class:`click.Choice` whose choices come from ``load()`` whenever click reads them.

    The registry's methods (and constants of modules that import torch) are then read at parse or help
    time, not at start-up, and methods registered later are offered too.
    """

    def __init__(self, load: Callable[[], Sequence[str]]) -> None:
        self._load = load
        super().__init__(())

    @property  # type: ignore[override]
    def choices(self) -> tuple[str, ...]:
        """The current choices."""
        return tuple(self._load())

    @choices.setter
    def choices(self, value: Sequence[str]) -> None:  # click.Choice.__init__ assigns them; ignored
        pass


def _method_names() -> list[str]:
    from hyperplex.geo.methane.registry import list_methods

    return list_methods()


def _band_strategies() -> tuple[str, ...]:
    from hyperplex.geo.methane.bands import STRATEGIES

    return STRATEGIES


def _key_values(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` strings as a dict; values parsed as JSON (numbers, true/false, lists), else kept as text."""
    out: dict[str, Any] = {}
    for item in values:
        key, sep, text = item.partition("=")
        if not (sep and key):
            raise click.BadParameter(f"expected KEY=VALUE; got {item!r}.", ctx, param)
        try:
            out[key] = json.loads(text)
        except ValueError:
            out[key] = text
    return out


def _field(part: type, name: str, *decls: str, **kwargs: Any) -> Decorator:
    """A click option for field ``name`` of the configuration class ``part``: same name, the field's default."""
    default = next(f.default for f in fields(part) if f.name == name)
    rng = field_range(part, name)
    if rng is not None:  # the field's declared range, enforced by click too
        kwargs["type"] = rng.click_type(kwargs.get("type", float))
    return click.option(*decls, name, default=default, show_default=True, **kwargs)


def _compose(*decorators: Decorator) -> Decorator:
    """One decorator applying ``decorators`` so that the options appear in ``--help`` in the order given."""

    def apply(func: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


#: Options of one detection run (``methane detect`` and ``demo``), named like the configuration's fields.
detection_options = _compose(
    _field(DetectConfig, "method", "--method", type=LazyChoice(_method_names),
           help="Detection method (`hyperplex methane methods` describes them)."),
    click.option("--method-option", "-O", "method_options", multiple=True, callback=_key_values, metavar="KEY=VALUE",
                 help="Extra option of the method's function, repeatable (values read as JSON, else text)."),
    _field(DetectConfig, "window", "--window", nargs=2, type=float, help="Wavelength window MIN MAX, nm."),
    _field(DetectConfig, "bands", "--bands", type=int, help="Use only N bands of the window."),
    _field(DetectConfig, "band_strategy", "--band-strategy", type=LazyChoice(_band_strategies)),
    _field(DetectConfig, "group", "--group", type=click.Choice(["column", "tile"]),
           help="Statistics per detector column or per tile (default: the method's own)."),
    _field(MaskConfig, "l2a_mask", "--l2a-mask", type=click.Path(dir_okay=False, exists=True),
           help="EMIT L2A MASK granule."),
    _field(MaskConfig, "saturation_threshold", "--saturation-threshold", type=float),
    _field(MaskConfig, "flare_threshold", "--flare-threshold", type=float,
           help="Radiance at 2389 nm above which a pixel is a gas flare."),
    _field(MaskConfig, "dark_fraction", "--dark-fraction", type=float,
           help="Mask pixels darker than this fraction of the scene median (water)."),
    _field(DelineationConfig, "sigma", "--sigma", type=float, help="Smoothing before thresholding, px."),
    _field(DelineationConfig, "threshold", "--threshold", type=float, help="Plume threshold, ppm·m (or score)."),
    _field(DelineationConfig, "min_peak", "--min-peak", type=float, help="Smallest plume peak, ppm·m."),
    _field(DelineationConfig, "min_pixels", "--min-pixels", type=int, help="Smallest plume, pixels."),
    _field(DelineationConfig, "vet", "--vet/--no-vet", help="Reject candidates that fail the look-alike tests."),
    _field(DelineationConfig, "min_probability", "--min-probability", type=float,
           help="Keep candidates whose calibrated plume probability reaches this."),
    _field(DetectConfig, "wind_speed", "--wind-speed", type=float, metavar="M/S",
           help="10 m wind speed for emission rates (IME method); none: no rates."),
    _field(DetectConfig, "wind_speed_sigma", "--wind-speed-sigma", type=float, metavar="M/S",
           help="1-sigma uncertainty of --wind-speed."),
    _field(DetectConfig, "ortho", "--ortho/--no-ortho", help="Outputs on the GLT grid, or in sensor geometry."),
)  # fmt: skip

#: Options of a batch (``methane detect``): recomputation and the dask cluster.
batch_options = _compose(
    _field(DetectConfig, "overwrite", "--overwrite", is_flag=True, help="Recompute scenes whose outputs are complete."),
    click.option("--workers", type=click.IntRange(min=1), default=None,
                 help="Start a local dask cluster with N workers."),
    click.option("--scheduler", default=None, help="Use an existing dask scheduler, tcp://host:port."),
    _field(DetectConfig, "chunk_tasks", "--chunk-tasks", is_flag=True,
           help="On a cluster: scenes one at a time, their line chunks read as dask tasks."),
)  # fmt: skip


class SceneRange(click.ParamType):
    """A number in the range :data:`hyperplex.geo.synth.emit.SCENE_RANGES` declares for argument ``name``.

    The ranges are read when a value is converted, so that listing commands does not import the generator.
    """

    def __init__(self, name: str, kind: type = int) -> None:
        self.name = "integer" if kind is int else "float"
        self.argument = name
        self.kind = kind

    def resolved(self) -> click.ParamType:
        """The ``click.IntRange`` or ``click.FloatRange`` of the argument."""
        from hyperplex.geo.synth.emit import SCENE_RANGES

        return SCENE_RANGES[self.argument].click_type(self.kind)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """``value`` as a number inside the argument's range; click's usage error otherwise."""
        return self.resolved().convert(value, param, ctx)


def _scene(decl: str, argument: str, default: Any, help: str | None = None, **kwargs: Any) -> Decorator:
    """A ``synth emit`` option for argument ``argument`` of :func:`~hyperplex.geo.synth.emit_scene`."""
    kind = float if isinstance(default, (float, tuple)) else int
    return click.option(decl, default=default, show_default=True, type=SceneRange(argument, kind), help=help, **kwargs)


def _check_stem(stem: str | None) -> None:
    if stem is not None and (not stem.strip() or Path(stem).name != stem or stem in (".", "..")):
        raise click.BadParameter(f"{stem!r} must be a plain file name (no folders).", param_hint="'--stem'")


@click.command("emit")
@_out_option(required=True)
@_scene("--lines", "lines", 256, "Downtrack size (EMIT: 1280).")
@_scene("--samples", "samples", 242, "Crosstrack size (EMIT: 1242).")
@_scene("--plumes", "plumes", 3, "Number of CH4 plumes.")
@_scene("--strength", "plume_strength", (1000.0, 3000.0), "Plume peak range, ppm·m.", nargs=2)
@_scene("--size", "plume_size", (3.0, 6.0), "Plume sigma range, px.", nargs=2)
@_scene("--seed", "seed", 0)
@_scene("--fill-columns", "fill_columns", 0, "Whole columns of fill (-9999).")
@_scene("--saturated", "saturated", 0, "Saturated hot spots.")
@_scene("--flares", "flares", 0, "Gas-flare pixels.")
@_scene("--water", "water", 0, "Dark water bodies.")
@_scene("--lookalikes", "lookalikes", 0, "2335 nm absorbing surface patches.")
@_scene("--rotation", "glt_rotation", 0.0, "GLT rotation in degrees.")
@_scene("--noise", "noise", 1.0, "Noise multiplier.")
@click.option("--stem", default=None, help="File stem (default: an EMIT-style granule name).")
@_quiet
def synth_emit(out_dir: Path, quiet: bool, **kwargs: object) -> None:
    """Write a synthetic EMIT L1B RAD granule with known methane plumes, and its truth."""
    from hyperplex.geo.synth import emit_scene, write_emit_scene

    names = {"strength": "plume_strength", "size": "plume_size", "rotation": "glt_rotation"}
    stem = kwargs.pop("stem")
    args = {names.get(k, k): v for k, v in kwargs.items()}
    with click_errors():
        _check_stem(stem)
        writable_dir(out_dir)
        scene = emit_scene(**args)
        paths = write_emit_scene(scene, out_dir, stem)
    for key, path in paths.items():
        click.echo(f"{key:9s} {path}")
    if not quiet:
        for p in scene.plumes:
            click.echo(f"plume {p['id']}: peak {p['peak_ppmm']:.0f} ppm·m, {p['pixels']} px, IME {p['ime_kg']:.0f} kg")


@click.command("methane-tiles")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Tile store to write (*.zarr).")
@click.option("--scenes", default=40, show_default=True, type=click.IntRange(min=1), help="Synthetic scenes.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Seed of the set.")
@click.option("--size", default=256, show_default=True, type=click.IntRange(16, 4096), help="Scene side, px.")
@click.option("--tile", default=64, show_default=True, type=click.IntRange(min=16), help="Tile side, px.")
@click.option(
    "--threshold",
    default=100.0,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Mask pixels with a true enhancement >= this, ppm·m.",
)
@click.option(
    "--strength",
    default=(200.0, 5000.0),
    show_default=True,
    nargs=2,
    type=click.FloatRange(0, min_open=True),
    help="Plume peak range, ppm·m (log-uniform).",
)
@click.option("--max-plumes", default=4, show_default=True, type=click.IntRange(0, 100), help="Most plumes per scene.")
@click.option("--empty-every", default=4, show_default=True, type=click.IntRange(min=1),
              help="Keep every n-th tile without plume pixels.")  # fmt: skip
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Processes generating scenes (same tiles for any count).")  # fmt: skip
@_quiet
def synth_methane_tiles(out: Path, quiet: bool, workers: int, **kwargs: Any) -> None:
    """Write training tiles for plume segmentation (2122-2488 nm features, plume masks) from synthetic scenes."""
    from hyperplex.common.progress import quiet as quiet_bars
    from hyperplex.geo.methane.plume_tiles import TileRecipe, methane_tiles

    names = {"threshold": "threshold_ppmm"}
    with click_errors():
        recipe = TileRecipe(**{names.get(k, k): v for k, v in kwargs.items()})
        writable_dir(out.parent)
        with quiet_bars(quiet):
            path = methane_tiles(out, recipe, workers=workers)
    click.echo(f"tiles {path}")


@click.command("demo")
@_out_option(default=Path("demo_out"), show_default=True)
@detection_options
@_quiet
def demo(out_dir: Path, quiet: bool, **options: Any) -> None:
    """Detect methane in a small built-in synthetic EMIT scene (3 plumes, water, look-alikes, a flare)."""
    from hyperplex.common.progress import quiet as quiet_progress
    from hyperplex.geo.demo import run_demo

    with click_errors(), quiet_progress(quiet):
        config = DetectConfig.from_options(**options)
        summary = run_demo(writable_dir(out_dir), config=config)
    click.echo(f"hyperplex demo ({options['method']}): {summary['plume_count']} plume(s) in "
               f"{summary['timings_s']['total']:.1f} s")  # fmt: skip
    click.echo(plume_table(summary["plumes"], summary["units"]))
    click.echo("injected (truth):")
    for p in summary["truth"]:
        click.echo(f"  peak {p['peak_ppmm']:.0f} ppm·m, IME {p['ime_kg']:.0f} kg at {p['lon']:.5f}, {p['lat']:.5f}")
    click.echo(f"outputs in {out_dir.resolve()}:")
    for key, path in summary["outputs"].items():
        click.echo(f"  {key:15s} {path}")


@click.group("methane")
def methane() -> None:
    """Methane plume detection on imaging-spectrometer radiance (EMIT, ENVI, GeoTIFF)."""


@methane.command("detect")
@click.argument("inputs", nargs=-1, required=True)
@_out_option(required=True)
@detection_options
@batch_options
@_quiet
def detect(
    inputs: tuple[str, ...], out_dir: Path, quiet: bool, workers: int | None, scheduler: str | None, **options: Any
) -> None:
    """Detect methane plumes in INPUTS (paths, globs or @list.txt) and write georeferenced products.

    Per scene: <stem>_ch4enh.tif (ppm·m; score methods write <stem>_ch4score.tif instead),
    <stem>_ch4unc.tif (1-sigma ppm·m), <stem>_plumes.tif, <stem>_plumes.geojson, <stem>_quicklook.png
    and <stem>_run.json. Another method's products in the same --out are not replaced (use another
    folder or --overwrite).
    """
    from hyperplex.common.progress import quiet as quiet_progress

    with click_errors(), quiet_progress(quiet):
        cfg = DetectConfig.from_options(**options)
        writable_dir(out_dir)
        if not (workers or scheduler):  # the first scene's large buffers are written while the pipeline imports
            from hyperplex.geo.detect.warm_start import warm_start

            warm_start(inputs, cfg)
        from hyperplex.geo.detect import detect_many

        result = detect_many(list(inputs), out_dir, cfg, workers=workers, scheduler=scheduler)
    if result.skipped:
        click.echo(f"warning: skipped {len(result.skipped)} file(s) that are not scenes (no hyperspectral format "
                   f"claims them), e.g. {result.skipped[0]}", err=True)  # fmt: skip
    _report(result.summaries, quiet)
    if not result.ok:
        raise SystemExit(1)


@methane.command("methods")
def methods() -> None:
    """List the detection methods: name, output units, statistics groupings, description."""
    from hyperplex.geo.methane.registry import get_method, list_methods

    for name in list_methods():
        entry = get_method(name)
        click.echo(f"{name:10s} {entry.units:6s} {'/'.join(entry.grouping) or '-':12s} {entry.description}")


def _report(summaries: list[dict], quiet: bool) -> None:
    for s in summaries:
        if s["status"] == "failed":
            where = "" if s.get("path", "") in s["error"] else f" ({s['path']})"
            click.echo(f"FAILED  {s['scene']}: {s['error']}{where}", err=True)
            continue
        if s["status"] == "skipped":
            click.echo(f"skipped {s['scene']} (outputs complete; --overwrite to redo)")
            continue
        click.echo(f"done    {s['scene']}: {s['plume_count']} plume(s) in {s['timings_s']['total']:.1f} s")
        if not quiet:
            click.echo(plume_table(s["plumes"], s["units"]))
    failed = sum(s["status"] == "failed" for s in summaries)
    click.echo(f"{len(summaries)} scene(s): {len(summaries) - failed} ok, {failed} failed")


def plume_table(plumes: list[dict], units: str) -> str:
    """A fixed-width text table of plumes."""
    from hyperplex.geo.detect.plume_table import peak_and_mean

    head = (f"  {'id':>3} {'max':>8} {'mean':>8} {'pixels':>7} {'IME kg':>8} {'Q kg/h':>8} {'lon':>11} {'lat':>10}"
            "  confidence")  # fmt: skip
    rows = [head]
    fmt = "8.0f" if units == "ppm·m" else "8.3g"  # scores are small numbers (ACE in [0, 1])
    for p in plumes:
        big, mean = peak_and_mean(p)
        ime = f"{p['ime_kg']:8.0f}" if p.get("ime_kg") is not None else f"{'-':>8}"
        rate = f"{p['emission_rate_kg_h']:8.0f}" if p.get("emission_rate_kg_h") is not None else f"{'-':>8}"
        lon = f"{p['centroid_lon']:11.5f}" if p["centroid_lon"] is not None else f"{'-':>11}"
        lat = f"{p['centroid_lat']:10.5f}" if p["centroid_lat"] is not None else f"{'-':>10}"
        rows.append(
            f"  {p['id']:>3} {big:{fmt}} {mean:{fmt}} {p['pixels']:7d} {ime} {rate} {lon} {lat}  {p['confidence']}"
        )
    return "\n".join(rows) + f"\n  ({units})"
