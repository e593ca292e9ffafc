"""Command-line entry points of hyperplex.bio (registered through the ``hyperplex.synth`` entry-point group)."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["synth_microscopy"]


@click.command("microscopy")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output directory.")
@click.option("--size", default=1024, show_default=True, type=click.IntRange(32, 8192), help="Image edge, pixels.")
@click.option(
    "--markers", default=8, show_default=True, type=click.IntRange(1, 60), help="Marker channels (DAPI first)."
)
@click.option("--cells", default=None, type=click.IntRange(min=1), help="Maximum number of cells [default: fill].")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")
@click.option("--quiet", is_flag=True, help="No progress output.")
def synth_microscopy(out: Path, size: int, markers: int, cells: int | None, seed: int, quiet: bool) -> None:
    """Write a synthetic multiplex tissue with known truth.

    Fluorescence image (OME-TIFF and OME-Zarr 0.5, pyramidal), matching H&E, cell and nucleus masks,
    and the per-cell marker expression (cells.csv, truth.json).
    """
    from hyperplex.bio.synth import tissue, write_dataset
    from hyperplex.common.cli.errors import click_errors
    from hyperplex.common.outdir import writable_dir
    from hyperplex.common.progress import quiet as quiet_progress

    with click_errors(), quiet_progress(quiet):
        writable_dir(out)
        result = tissue(size=size, markers=markers, cells=cells, seed=seed)
        paths = write_dataset(result, out)
    if not quiet:
        click.echo(f"{result.count} cells, {len(result.channels)} markers, {size}x{size} px -> {out}")
        for name, path in paths.items():
            click.echo(f"  {name:16s} {path}")
