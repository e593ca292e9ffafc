"""``hyperplex`` subcommands contributed by hyperplex.geo: ``synth emit`` and ``demo``."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["demo", "synth_emit"]

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
@_quiet
def demo(out_dir: Path, quiet: bool) -> None:
    """Run the main pipeline on a small built-in synthetic EMIT scene."""
    from hyperplex.common.progress import quiet as quiet_progress
    from hyperplex.geo.demo import run_demo

    with quiet_progress(quiet):
        outputs = run_demo(out_dir)
    click.echo(f"hyperplex demo: outputs in {out_dir.resolve()}")
    for key, path in outputs.items():
        click.echo(f"  {key:12s} {path}")
