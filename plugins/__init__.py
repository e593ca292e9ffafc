"""hyperplex.plugins: the napari plugin (npe2). The only subpackage that imports napari or Qt."""

__all__: list[str] = []
