"""hyperplex.plugins: the napari plugin (npe2). The only subpackage that imports napari or Qt.

The manifest (``napari.yaml``) contributes a reader (OME-TIFF, OME-Zarr, TIFF stacks, EMIT NetCDF,
ENVI, GeoTIFF), OME-TIFF/OME-Zarr writers, two samples and three dock widgets. The Qt-free logic
behind them is importable here without napari, Qt or torch; the widgets load on first access.
"""

from hyperplex.common.image import MultiscaleImage
from hyperplex.common.lazy import lazy_exports
from hyperplex.plugins._composite import additive_composite, composite_colors, percentile_limits
from hyperplex.plugins._embedding import pca_rgb
from hyperplex.plugins._layers import image_layer_data
from hyperplex.plugins._methane import analyze_cube, plume_table
from hyperplex.plugins._reader import get_reader, open_stack, read_path
from hyperplex.plugins._sample_data import emit_sample, tissue_sample
from hyperplex.plugins._stacks import find_stacks, pixel_profile
from hyperplex.plugins._writer import layers_to_array, write_ome_tiff, write_ome_zarr

__all__ = [
    "InspectorWidget",
    "MethaneWidget",
    "ModelsWidget",
    "MultiscaleImage",
    "additive_composite",
    "analyze_cube",
    "composite_colors",
    "emit_sample",
    "find_stacks",
    "get_reader",
    "image_layer_data",
    "layers_to_array",
    "open_stack",
    "pca_rgb",
    "percentile_limits",
    "pixel_profile",
    "plume_table",
    "read_path",
    "tissue_sample",
    "write_ome_tiff",
    "write_ome_zarr",
]

__getattr__ = lazy_exports(  # the Qt widgets load on first use: napari start-up stays light
    __name__,
    {
        "InspectorWidget": "hyperplex.plugins._inspector",
        "MethaneWidget": "hyperplex.plugins._methane_widget",
        "ModelsWidget": "hyperplex.plugins._models_widget",
    },
)
