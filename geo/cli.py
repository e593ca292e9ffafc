"""``hyperplex`` subcommands contributed by hyperplex.geo: ``synth emit`` and ``demo``."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["demo", "methane", "plume_table", "synth_emit"]

_quiet = click.option("--quiet", "-q", is_flag=True, help="No progress bars, print only results.")


@click.command("emit")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output directory.")  # fmt: skip
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
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("demo_out"),
              show_default=True, help="Output directory.")  # fmt: skip
@click.option("--method", type=click.Choice(["mf", "mag1c", "mag1c-sas", "cem", "ace"]), default="mag1c",
              show_default=True)  # fmt: skip
@_quiet
def demo(out_dir: Path, method: str, quiet: bool) -> None:
    """Detect methane in a small built-in synthetic EMIT scene (3 plumes, water, look-alikes, a flare)."""
    from hyperplex.common.progress import quiet as quiet_progress
    from hyperplex.geo.demo import run_demo

    with quiet_progress(quiet):
        summary = run_demo(out_dir, method)
    click.echo(f"hyperplex demo ({method}): {summary['plume_count']} plume(s) in {summary['timings_s']['total']:.1f} s")
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
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output directory.")  # fmt: skip
@click.option("--method", type=click.Choice(["mf", "mag1c", "mag1c-sas", "cem", "ace"]), default="mag1c",
              show_default=True, help="Filter.")  # fmt: skip
@click.option("--window", nargs=2, type=float, default=(2122.0, 2488.0), show_default=True,
              help="Wavelength window MIN MAX, nm.")  # fmt: skip
@click.option("--bands", type=int, default=None, help="Use only N bands of the window.")
@click.option("--band-strategy", type=click.Choice(["highest-transmittance", "highest-variance", "evenly-spaced"]),
              default="highest-transmittance", show_default=True)  # fmt: skip
@click.option("--group", type=click.Choice(["column", "tile"]), default="column", show_default=True,
              help="Statistics per detector column or per tile.")  # fmt: skip
@click.option("--l2a-mask", type=click.Path(dir_okay=False), default=None, help="EMIT L2A MASK granule.")
@click.option("--saturation-threshold", type=float, default=6.0, show_default=True)
@click.option("--dark-fraction", type=float, default=0.25, show_default=True,
              help="Mask pixels darker than this fraction of the scene median (water).")  # fmt: skip
@click.option("--sigma", type=float, default=1.5, show_default=True, help="Smoothing before thresholding, px.")
@click.option("--threshold", type=float, default=100.0, show_default=True, help="Plume threshold, ppm·m.")
@click.option("--min-peak", type=float, default=250.0, show_default=True, help="Smallest plume peak, ppm·m.")
@click.option("--min-pixels", type=int, default=10, show_default=True, help="Smallest plume, pixels.")
@click.option("--no-vet", is_flag=True, help="Keep candidates that fail the look-alike tests.")
@click.option("--no-ortho", is_flag=True, help="Keep sensor geometry instead of the GLT grid.")
@click.option("--overwrite", is_flag=True, help="Recompute scenes whose outputs are complete.")
@click.option("--workers", type=int, default=None, help="Start a local dask cluster with N workers.")
@click.option("--scheduler", default=None, help="Use an existing dask scheduler, tcp://host:port.")
@click.option(
    "--chunk-tasks", is_flag=True, help="On a cluster: scenes one at a time, their line chunks read as dask tasks."
)
@_quiet
def detect(inputs: tuple[str, ...], out_dir: Path, quiet: bool, **opts: object) -> None:
    """Detect methane plumes in INPUTS (paths, globs or @list.txt) and write georeferenced products.

    Per scene: <stem>_ch4enh.tif, <stem>_plumes.tif, <stem>_plumes.geojson, <stem>_quicklook.png
    and <stem>_run.json.
    """
    from hyperplex.common.errors import HyperplexError
    from hyperplex.common.progress import quiet as quiet_progress
    from hyperplex.geo.detect import DelineationConfig, DetectConfig, MaskConfig, detect_many

    try:
        cfg = DetectConfig(
            method=opts["method"], window=tuple(opts["window"]), bands=opts["bands"],
            band_strategy=opts["band_strategy"], group=opts["group"], ortho=not opts["no_ortho"],
            overwrite=opts["overwrite"], chunk_tasks=opts["chunk_tasks"],
            masks=MaskConfig(saturation_threshold=opts["saturation_threshold"], dark_fraction=opts["dark_fraction"],
                             l2a_mask=opts["l2a_mask"]),
            delineation=DelineationConfig(sigma=opts["sigma"], threshold=opts["threshold"], min_peak=opts["min_peak"],
                                          min_pixels=opts["min_pixels"], vet=not opts["no_vet"]),
        )  # fmt: skip
        with quiet_progress(quiet):
            result = detect_many(list(inputs), out_dir, cfg, workers=opts["workers"], scheduler=opts["scheduler"])
    except HyperplexError as err:
        raise click.ClickException(str(err)) from err
    _report(result.summaries, quiet)
    if not result.ok:
        raise SystemExit(1)


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
    head = f"  {'id':>3} {'max':>8} {'mean':>8} {'pixels':>7} {'IME kg':>8} {'lon':>11} {'lat':>10}  confidence"
    rows = [head]
    for p in plumes:
        big = p["max_ppmm"] if p["max_ppmm"] is not None else p.get("max_score", float("nan"))
        mean = p["mean_ppmm"] if p["mean_ppmm"] is not None else p.get("mean_score", float("nan"))
        ime = f"{p['ime_kg']:8.0f}" if p.get("ime_kg") is not None else f"{'-':>8}"
        lon = f"{p['centroid_lon']:11.5f}" if p["centroid_lon"] is not None else f"{'-':>11}"
        lat = f"{p['centroid_lat']:10.5f}" if p["centroid_lat"] is not None else f"{'-':>10}"
        rows.append(f"  {p['id']:>3} {big:8.0f} {mean:8.0f} {p['pixels']:7d} {ime} {lon} {lat}  {p['confidence']}")
    return "\n".join(rows) + f"\n  ({units})"
