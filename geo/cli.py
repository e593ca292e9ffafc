"""``hyperplex`` subcommands contributed by hyperplex.geo: ``synth emit``, ``demo`` and ``methane``.

Detection options are declared once, in :data:`detection_options` and :data:`batch_options` (rasterio's
``rio/options.py`` pattern): each is named like a field of :class:`~hyperplex.geo.detect.config.DetectConfig`
or of its mask and delineation parts and takes that field's default, and
:meth:`DetectConfig.from_options` turns the parsed options into a configuration. ``--method`` offers the
methods of :mod:`hyperplex.geo.methane.registry`, read when click needs them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import click

from hyperplex.geo.detect.config import DelineationConfig, DetectConfig, MaskConfig

__all__ = ["LazyChoice", "batch_options", "demo", "detection_options", "methane", "plume_table", "synth_emit"]

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
    _field(MaskConfig, "l2a_mask", "--l2a-mask", type=click.Path(dir_okay=False), help="EMIT L2A MASK granule."),
    _field(MaskConfig, "saturation_threshold", "--saturation-threshold", type=float),
    _field(MaskConfig, "dark_fraction", "--dark-fraction", type=float,
           help="Mask pixels darker than this fraction of the scene median (water)."),
    _field(DelineationConfig, "sigma", "--sigma", type=float, help="Smoothing before thresholding, px."),
    _field(DelineationConfig, "threshold", "--threshold", type=float, help="Plume threshold, ppm·m (or score)."),
    _field(DelineationConfig, "min_peak", "--min-peak", type=float, help="Smallest plume peak, ppm·m."),
    _field(DelineationConfig, "min_pixels", "--min-pixels", type=int, help="Smallest plume, pixels."),
    _field(DelineationConfig, "vet", "--vet/--no-vet", help="Reject candidates that fail the look-alike tests."),
    _field(DetectConfig, "ortho", "--ortho/--no-ortho", help="Outputs on the GLT grid, or in sensor geometry."),
)  # fmt: skip

#: Options of a batch (``methane detect``): recomputation and the dask cluster.
batch_options = _compose(
    _field(DetectConfig, "overwrite", "--overwrite", is_flag=True, help="Recompute scenes whose outputs are complete."),
    click.option("--workers", type=int, default=None, help="Start a local dask cluster with N workers."),
    click.option("--scheduler", default=None, help="Use an existing dask scheduler, tcp://host:port."),
    _field(DetectConfig, "chunk_tasks", "--chunk-tasks", is_flag=True,
           help="On a cluster: scenes one at a time, their line chunks read as dask tasks."),
)  # fmt: skip


@contextlib.contextmanager
def _click_errors() -> Iterator[None]:
    """Report hyperplex errors (bad options, unreadable scenes) as click errors: message and exit code 1."""
    from hyperplex.common.errors import HyperplexError

    try:
        yield
    except HyperplexError as err:
        raise click.ClickException(str(err)) from err


@click.command("emit")
@_out_option(required=True)
@click.option("--lines", default=256, show_default=True, help="Downtrack size (EMIT: 1280).")
@click.option("--samples", default=242, show_default=True, help="Crosstrack size (EMIT: 1242).")
@click.option("--plumes", default=3, show_default=True, help="Number of CH4 plumes.")
@click.option("--strength", nargs=2, type=float, default=(1000.0, 3000.0), show_default=True,
              help="Plume peak range, ppm·m.")  # fmt: skip
@click.option("--size", nargs=2, type=float, default=(3.0, 6.0), show_default=True, help="Plume sigma range, px.")
@click.option("--seed", default=0, show_default=True)
@click.option("--fill-columns", default=0, show_default=True, help="Whole columns of fill (-9999).")
@click.option("--saturated", default=0, show_default=True, help="Saturated hot spots.")
@click.option("--flares", default=0, show_default=True, help="Gas-flare pixels.")
@click.option("--water", default=0, show_default=True, help="Dark water bodies.")
@click.option("--lookalikes", default=0, show_default=True, help="2335 nm absorbing surface patches.")
@click.option("--rotation", default=0.0, show_default=True, help="GLT rotation in degrees.")
@click.option("--noise", default=1.0, show_default=True, help="Noise multiplier.")
@click.option("--stem", default=None, help="File stem (default: an EMIT-style granule name).")
@_quiet
def synth_emit(out_dir: Path, quiet: bool, **kwargs: object) -> None:
    """Write a synthetic EMIT L1B RAD granule with known methane plumes, and its truth."""
    from hyperplex.geo.synth import emit_scene, write_emit_scene

    names = {"strength": "plume_strength", "size": "plume_size", "rotation": "glt_rotation"}
    stem = kwargs.pop("stem")
    args = {names.get(k, k): v for k, v in kwargs.items()}
    scene = emit_scene(**args)
    paths = write_emit_scene(scene, out_dir, stem)
    for key, path in paths.items():
        click.echo(f"{key:9s} {path}")
    if not quiet:
        for p in scene.plumes:
            click.echo(f"plume {p['id']}: peak {p['peak_ppmm']:.0f} ppm·m, {p['pixels']} px, IME {p['ime_kg']:.0f} kg")


@click.command("demo")
@_out_option(default=Path("demo_out"), show_default=True)
@detection_options
@_quiet
def demo(out_dir: Path, quiet: bool, **options: Any) -> None:
    """Detect methane in a small built-in synthetic EMIT scene (3 plumes, water, look-alikes, a flare)."""
    from hyperplex.common.progress import quiet as quiet_progress
    from hyperplex.geo.demo import run_demo

    with _click_errors(), quiet_progress(quiet):
        summary = run_demo(out_dir, config=DetectConfig.from_options(**options))
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

    Per scene: <stem>_ch4enh.tif, <stem>_plumes.tif, <stem>_plumes.geojson, <stem>_quicklook.png
    and <stem>_run.json.
    """
    from hyperplex.common.progress import quiet as quiet_progress
    from hyperplex.geo.detect import detect_many

    with _click_errors(), quiet_progress(quiet):
        cfg = DetectConfig.from_options(**options)
        result = detect_many(list(inputs), out_dir, cfg, workers=workers, scheduler=scheduler)
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
            click.echo(f"FAILED  {s['scene']}: {s['error']}", err=True)
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

    head = f"  {'id':>3} {'max':>8} {'mean':>8} {'pixels':>7} {'IME kg':>8} {'lon':>11} {'lat':>10}  confidence"
    rows = [head]
    for p in plumes:
        big, mean = peak_and_mean(p)
        ime = f"{p['ime_kg']:8.0f}" if p.get("ime_kg") is not None else f"{'-':>8}"
        lon = f"{p['centroid_lon']:11.5f}" if p["centroid_lon"] is not None else f"{'-':>11}"
        lat = f"{p['centroid_lat']:10.5f}" if p["centroid_lat"] is not None else f"{'-':>10}"
        rows.append(f"  {p['id']:>3} {big:8.0f} {mean:8.0f} {p['pixels']:7d} {ime} {lon} {lat}  {p['confidence']}")
    return "\n".join(rows) + f"\n  ({units})"
