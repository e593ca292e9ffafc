"""Open time of a 21 GB (uncompressed) pyramidal OME-TIFF and OME-Zarr against a 1 MB one.

A virtual slide (10 channels x 32768 x 32768 uint16 = 21.5 GB of pixels, 3 levels, 1024 px zstd tiles)
is written tile by tile from a generator, so it takes about 1-2 MB on disk. ``open_image`` must parse
only metadata, so opening it should cost about the same as opening a tiny image: the printed ratio is
the big file's open time over the tiny file's, measured in the same process (target: well under 1 s
absolute, ratio near 1). Also times reading one 1024x1024 tile of one channel.

Run: .venv/bin/python benchmarks/bench_bio_open.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

from hyperplex.bio import open_image, write_ome_tiff, write_ome_zarr

SHAPE, TILE, LEVELS = (10, 32768, 32768), 1024, 3


def write_virtual_tiff(path: Path) -> None:
    zeros = np.zeros((TILE, TILE), np.uint16)
    names = ["DAPI", "CD3", "CD8", "CD20", "PanCK", "Ki67", "CD68", "CD4", "CD45", "SMA"]
    meta = {"axes": "CYX", "Channel": {"Name": names}, "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.25}
    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tw:
        for k in range(LEVELS):
            shape = (SHAPE[0], SHAPE[1] >> k, SHAPE[2] >> k)
            count = shape[0] * (shape[1] // TILE) * (shape[2] // TILE)
            extra = {"subifds": LEVELS - 1, "metadata": meta} if k == 0 else {"subfiletype": 1}
            tw.write((zeros for _ in range(count)), shape=shape, dtype=np.uint16, tile=(TILE, TILE),
                     compression="zstd", **extra)  # fmt: skip


def write_virtual_zarr(path: Path) -> None:
    """A zarr v3 OME-Zarr of the same size with no chunk written (all read as the fill value)."""
    import zarr

    from hyperplex.bio.ngff import build_multiscales, ome_attrs, omero_channels
    from hyperplex.common.channels import ChannelSet

    root = zarr.open_group(path, mode="w", zarr_format=3)
    for k in range(LEVELS):
        shape = (SHAPE[0], SHAPE[1] >> k, SHAPE[2] >> k)
        root.create_array(str(k), shape=shape, chunks=(1, TILE, TILE), dtype=np.uint16, dimension_names=("c", "y", "x"))
    paths, factors = [str(k) for k in range(LEVELS)], [(2.0**k, 2.0**k) for k in range(LEVELS)]
    content = {"multiscales": [build_multiscales("virtual", "cyx", paths, factors, (0.25, 0.25), "0.5")],
               "omero": {"channels": omero_channels(ChannelSet.default(SHAPE[0]))}}  # fmt: skip
    root.attrs.update(ome_attrs(content, "0.5"))


def timed(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        img = fn()
        times.append(time.perf_counter() - start)
        img.close()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, default=None, help="Write the files here and keep them.")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_bio_"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        big, small = folder / "virtual_21GB.ome.tif", folder / "tiny.ome.tif"
        start = time.perf_counter()
        write_virtual_tiff(big)
        print(f"wrote {big.name}: {np.prod(SHAPE) * 2 / 1e9:.1f} GB of pixels in "
              f"{time.perf_counter() - start:.1f} s, {big.stat().st_size / 1e6:.1f} MB on disk")  # fmt: skip
        tiny = np.random.default_rng(0).integers(0, 4000, (10, 512, 512), dtype=np.uint16)
        write_ome_tiff(small, tiny, pixel_size_um=0.25, tile=256, levels=2)
        t_big, t_small = timed(lambda: open_image(big)), timed(lambda: open_image(small))
        print(f"open OME-TIFF big {t_big * 1e3:7.1f} ms  tiny {t_small * 1e3:7.1f} ms  ratio {t_big / t_small:5.2f}")
        img = open_image(big)
        start = time.perf_counter()
        img.levels[0][3, 10240:11264, 20480:21504].compute()
        print(f"read one 1024x1024 tile of the big file: {(time.perf_counter() - start) * 1e3:.1f} ms")

        zbig, zsmall = folder / "virtual_21GB.ome.zarr", folder / "tiny.ome.zarr"
        start = time.perf_counter()
        write_virtual_zarr(zbig)
        print(f"wrote {zbig.name} (empty chunks not stored) in {time.perf_counter() - start:.1f} s")
        write_ome_zarr(zsmall, tiny, pixel_size_um=0.25, chunks=256, levels=2)
        z_big, z_small = timed(lambda: open_image(zbig)), timed(lambda: open_image(zsmall))
        print(f"open OME-Zarr big {z_big * 1e3:7.1f} ms  tiny {z_small * 1e3:7.1f} ms  ratio {z_big / z_small:5.2f}")
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
