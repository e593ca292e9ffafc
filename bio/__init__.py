"""hyperplex.bio: multiplex microscopy (OME-TIFF, OME-Zarr, TIFF stacks) and its models."""

__all__: list[str] = []
