"""The pixel-major resident cube of column-wise Mag1c (numpy arrays on the compiled path, tensors in torch).

Pixel ``(r, w)`` is row ``lead + w * H + r`` of a (lead + W * H, C) float32 buffer (one detector column after
the other), so a column group's pixels are contiguous (see :mod:`.resident` and :mod:`.compiled_reader`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ResidentCube"]


@dataclass
class ResidentCube:
    """The pixel-major buffer of a cube and its per-pixel flags.

    Attributes:
        buffer: (lead + W * H, C) float32 (see the module docstring).
        lead: Unused rows before the data (room for packing candidates in place).
        valid: (W, H) bool: pixels that are filtered.
        stats: (W, H) bool: valid pixels that enter the statistics (``valid`` itself without a ``stats_mask``).
    """

    buffer: Any
    lead: int
    valid: Any
    stats: Any

    @property
    def cube(self) -> Any:
        """The (W, H, C) view of the data rows."""
        width, height = self.valid.shape
        return self.buffer[self.lead :].reshape(width, height, -1)

    @property
    def masked_stats(self) -> bool:
        """Whether some valid pixels stay out of the statistics."""
        return self.stats is not self.valid
