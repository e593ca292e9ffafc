"""The filters' compute device, and whether it is the CPU, answered without importing torch where possible.

``device=None`` means CUDA when available, else the CPU. Asking torch costs its import (about 2.5 s), which
the compiled CPU path of Mag1c does not otherwise need; so :func:`runs_on_cpu` first looks at what torch
build is installed: a build without GPU libraries (``torch/lib/libtorch_cuda*``, ``libtorch_hip*``) cannot
see a GPU, and the answer is the CPU without importing it.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hyperplex.common.errors import InvalidParameterError

if TYPE_CHECKING:
    import torch

__all__ = ["gpu_build_installed", "resolve_device", "runs_on_cpu"]

#: Library name prefixes of torch builds that can use a GPU (CUDA, ROCm).
_GPU_LIBRARIES = ("libtorch_cuda", "torch_cuda", "libtorch_hip", "torch_hip")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a torch device; None picks CUDA when available, else CPU.

    Raises:
        InvalidParameterError: For a string torch does not parse, or CUDA where it is not available.
    """
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise InvalidParameterError(
            f"`device` must be a torch device such as 'cpu' or 'cuda:0'; got {device!r}."
        ) from err
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError(f"`device` is {device!r} but CUDA is not available here; use 'cpu' or None.")
    return parsed


def runs_on_cpu(device: Any) -> bool:
    """Whether ``device`` (as the filters take it) resolves to the CPU; imports torch only if it must.

    Raises:
        InvalidParameterError: As :func:`resolve_device`, for a device it cannot resolve.
    """
    if device == "cpu" or (device is None and "torch" not in sys.modules and not gpu_build_installed()):
        return True
    return resolve_device(device).type == "cpu"


@cache
def gpu_build_installed() -> bool:
    """Whether the installed torch has GPU libraries (True when that cannot be told without importing it)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return False
    lib = Path(spec.origin).parent / "lib"
    if not lib.is_dir():
        return True
    return any(path.name.startswith(_GPU_LIBRARIES) for path in lib.iterdir())
