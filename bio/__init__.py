"""hyperplex.bio: multiplex microscopy I/O (OME-TIFF, OME-Zarr, TIFF stacks, PNG/JPEG) and synthetic tissue.

Readers (registered in ``hyperplex.common.formats.FORMATS`` on import) return a :class:`MultiscaleImage`:
lazy dask levels ``(C, Y, X)``, a ``ChannelSet`` of marker names (and colours) and the pixel size in µm.
Nothing is read from disk until a level is computed. Importing the package registers the formats;
the readers, writers and synthetic tissue are imported on first use.

Example:
    >>> from hyperplex.bio import open_image, tissue, write_ome_zarr
    >>> sample = tissue(size=256, markers=8, seed=0)          # arrays + truth in memory
    >>> write_ome_zarr("t.ome.zarr", sample.image, sample.channels, sample.pixel_size_um)  # doctest: +SKIP
    >>> img = open_image("t.ome.zarr")                          # doctest: +SKIP
    >>> img.channels, img.pixel_size_um, [lvl.shape for lvl in img.levels]  # doctest: +SKIP
"""

from __future__ import annotations

from hyperplex.bio.formats import BIO_FORMATS, OME_TIFF, OME_ZARR, TIFF_STACK  # registers the formats (cheap)
from hyperplex.bio.pyramid import downsample, pyramid  # eager: the function shadows its module's name
from hyperplex.common.image import MultiscaleImage
from hyperplex.common.lazy import lazy_exports

__all__ = [
    "BIO_FORMATS",
    "OME_TIFF",
    "OME_ZARR",
    "TIFF_STACK",
    "MultiscaleImage",
    "SyntheticTissue",
    "detect_format",
    "downsample",
    "is_rgb",
    "open_image",
    "pyramid",
    "read_ome_tiff",
    "read_ome_zarr",
    "read_ome_zarr_labels",
    "read_png_jpeg",
    "read_tiff_stack",
    "synthetic_tissue",
    "tissue",
    "write_ome_tiff",
    "write_ome_zarr",
    "write_dataset",
]

_LAZY = {
    "detect_format": "hyperplex.bio.open",
    "open_image": "hyperplex.bio.open",
    "is_rgb": "hyperplex.bio.rgb",
    "read_png_jpeg": "hyperplex.bio.png_jpeg",
    "read_ome_tiff": "hyperplex.bio.ome_tiff",
    "read_ome_zarr": "hyperplex.bio.ome_zarr",
    "read_ome_zarr_labels": "hyperplex.bio.ome_zarr",
    "read_tiff_stack": "hyperplex.bio.tiff_stack",
    "SyntheticTissue": "hyperplex.bio.synth",
    "synthetic_tissue": "hyperplex.bio.synth",
    "tissue": "hyperplex.bio.synth",
    "write_dataset": "hyperplex.bio.synth",
    "write_ome_tiff": "hyperplex.bio.write_tiff",
    "write_ome_zarr": "hyperplex.bio.write_zarr",
}


__getattr__ = lazy_exports(__name__, _LAZY)


def __dir__() -> list[str]:
    """Public names, including the lazy ones."""
    return sorted(__all__)
