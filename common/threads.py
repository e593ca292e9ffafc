"""How many threads compute work may use (without importing torch to ask it)."""

from __future__ import annotations

import os
import sys

__all__ = ["compute_threads"]


def compute_threads() -> int:
    """Torch's thread count when torch is loaded; else ``OMP_NUM_THREADS`` when set, else the CPU count.

    (The compiled path does not import torch just to ask it.)
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        return int(torch.get_num_threads())
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(env) if env.isdigit() and int(env) > 0 else (os.cpu_count() or 1)
