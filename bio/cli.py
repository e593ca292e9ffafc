"""Command-line entry points of hyperplex.bio (registered through the ``hyperplex.synth`` entry-point group)."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["bio", "predict_mif", "synth_microscopy"]


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


@click.group("bio")
def bio() -> None:
    """Microscopy: H&E -> multiplex prediction on whole slides."""


@bio.command("predict-mif")
@click.argument("he", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="Output OME-Zarr (PRED.ome.zarr).")
@click.option("--model", "model", default=None, help="Preset with trained weights or a saved model file "
              "[default: miphei_small].")  # fmt: skip
@click.option("--tile", default=None, type=click.IntRange(16, 4096), help="Tile side, a multiple of 16 "
              "[default: the model's training size].")  # fmt: skip
@click.option("--overlap", default=None, type=click.IntRange(0, 2048), help="Tile overlap, pixels "
              "[default: a quarter of the tile].")  # fmt: skip
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="Threads reading tiles.")
@click.option("--labels", "labels", default=None, type=click.Path(exists=True, path_type=Path),
              help="Cell label image of the slide (instead of segmenting nuclei).")  # fmt: skip
@click.option("--device", default=None, help="cpu, cuda, cuda:N [default: a GPU when present].")
@click.option("--quiet", is_flag=True, help="No progress output.")
def predict_mif(he: Path, out: Path, model: str | None, tile: int | None, overlap: int | None, workers: int,
                labels: Path | None, device: str | None, quiet: bool) -> None:  # fmt: skip
    """Predict multiplex markers from an H&E slide (MIPHEI), tile by tile, resumable.

    Writes OUT (OME-Zarr 0.5, one channel per marker), OUT's stem + .cells.csv (one row per cell: centroid,
    area, mean predicted intensity and positive call per marker) and .cells.json (the thresholds). An
    interrupted run continues from OUT.work when run again with the same options.
    """
    from hyperplex.bio.predict_mif import predict_mif as run
    from hyperplex.common.cli.errors import click_errors
    from hyperplex.common.outdir import writable_dir
    from hyperplex.common.progress import quiet as quiet_progress

    with click_errors(), quiet_progress(quiet):
        writable_dir(out.parent if str(out.parent) else Path("."))
        result = run(he, out, model=model, tile=tile, overlap=overlap, workers=workers, labels=labels, device=device)
    if not quiet:
        click.echo(f"{len(result.markers)} markers, {result.cells} cells ({result.tiles_predicted} tiles predicted)")
        for path in (result.zarr, result.cells_csv, result.cells_json):
            click.echo(f"  {path}")
