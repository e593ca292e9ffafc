"""Device choice and mixed precision: bf16/fp16 autocast on a GPU, fp32 on the CPU."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from hyperplex.common.errors import InvalidParameterError

__all__ = ["Precision", "resolve_device"]


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> ``cuda:<local_rank>`` when a GPU is present, else ``cpu``; other names as given.

    Raises:
        InvalidParameterError: If CUDA is asked for but not available.
    """
    if name == "auto":
        name = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError(f"`device` is {name!r} but torch sees no CUDA GPU; use device='cpu'.")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


@dataclass(frozen=True)
class Precision:
    """Autocast settings of a run.

    Attributes:
        device_type: ``cpu`` or ``cuda``.
        dtype: Autocast dtype, or None for plain fp32.
    """

    device_type: str
    dtype: torch.dtype | None

    @classmethod
    def choose(cls, name: str, device: torch.device) -> Precision:
        """``auto``: bf16 on a GPU that supports it, else fp16; fp32 on the CPU. Explicit names are kept."""
        if name == "auto":
            if device.type != "cuda":
                return cls(device.type, None)
            name = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[name]
        return cls(device.type, dtype)

    @property
    def name(self) -> str:
        """``fp32``, ``bf16`` or ``fp16``."""
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    @property
    def needs_scaler(self) -> bool:
        """fp16 needs loss scaling (bf16 has fp32's range)."""
        return self.dtype is torch.float16

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Autocast for the forward pass (nothing for fp32)."""
        if self.dtype is None:
            yield
            return
        with torch.autocast(device_type=self.device_type, dtype=self.dtype):
            yield
