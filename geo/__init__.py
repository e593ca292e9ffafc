"""hyperplex.geo: hyperspectral remote sensing (EMIT and other imaging spectrometers), methane."""

__all__: list[str] = []
