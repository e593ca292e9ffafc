"""hyperplex.bio: multiplex microscopy I/O (OME-TIFF, OME-Zarr, TIFF stacks) and synthetic tissue.

Readers (registered in ``hyperplex.common.formats.FORMATS`` on import) return a :class:`MultiscaleImage`:
lazy dask levels ``(C, Y, X)``, a ``ChannelSet`` of marker names (and colours) and the pixel size in µm.
Nothing is read from disk until a level is computed.

Example:
    >>> from hyperplex.bio import open_image, tissue, write_ome_zarr
    >>> sample = tissue(size=256, markers=8, seed=0)          # arrays + truth in memory
    >>> write_ome_zarr("t.ome.zarr", sample.image, sample.channels, sample.pixel_size_um)  # doctest: +SKIP
    >>> img = open_image("t.ome.zarr")                          # doctest: +SKIP
    >>> img.channels, img.pixel_size_um, [lvl.shape for lvl in img.levels]  # doctest: +SKIP
"""

from hyperplex.bio.formats import BIO_FORMATS, OME_TIFF, OME_ZARR, TIFF_STACK
from hyperplex.bio.ome_tiff import read_ome_tiff
from hyperplex.bio.ome_zarr import read_ome_zarr, read_ome_zarr_labels
from hyperplex.bio.open import detect_format, open_image
from hyperplex.bio.pyramid import downsample, pyramid
from hyperplex.bio.synth import SyntheticTissue, synthetic_tissue, tissue, write_dataset
from hyperplex.bio.tiff_stack import read_tiff_stack
from hyperplex.bio.write_tiff import write_ome_tiff
from hyperplex.bio.write_zarr import write_ome_zarr
from hyperplex.common.image import MultiscaleImage

__all__ = [
    "BIO_FORMATS",
    "OME_TIFF",
    "OME_ZARR",
    "TIFF_STACK",
    "MultiscaleImage",
    "SyntheticTissue",
    "detect_format",
    "downsample",
    "open_image",
    "pyramid",
    "read_ome_tiff",
    "read_ome_zarr",
    "read_ome_zarr_labels",
    "read_tiff_stack",
    "synthetic_tissue",
    "tissue",
    "write_ome_tiff",
    "write_ome_zarr",
    "write_dataset",
]
