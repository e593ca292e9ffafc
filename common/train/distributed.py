"""torch.distributed for ``torchrun``: process group from the environment, rank-aware helpers.

``torchrun --nproc_per_node N -m hyperplex.common.train ...`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; the group uses NCCL on GPUs and gloo on the CPU. A plain run is world size 1.
"""

from __future__ import annotations

import hashlib
import os

import torch
import torch.distributed as dist

__all__ = ["Dist"]


class Dist:
    """Rank, world size and collectives of this process (no-ops when not distributed)."""

    def __init__(self) -> None:
        self.rank = int(os.environ.get("RANK", "0"))
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.owns_group = False

    @property
    def enabled(self) -> bool:
        """True when more than one process trains."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the one that writes files)."""
        return self.rank == 0

    def init(self, device: torch.device) -> None:
        """Join the process group (NCCL for CUDA, gloo otherwise) unless one exists already."""
        if self.enabled and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            self.owns_group = True

    def close(self) -> None:
        """Leave the process group if :meth:`init` created it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False

    def barrier(self) -> None:
        """Wait for every process."""
        if self.enabled:
            dist.barrier()

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """Mean of a tensor over processes."""
        if self.enabled:
            values = values.clone()
            dist.all_reduce(values)
            values /= self.world_size
        return values

    def sync_buffers(self, module: torch.nn.Module) -> None:
        """Average floating-point buffers (BatchNorm running statistics) over processes, in place.

        DDP keeps parameters in sync but each process updates its own running statistics in its last
        forward pass; averaging them before a checkpoint or export keeps every rank's weights equal.
        """
        if not self.enabled:
            return
        for buffer in module.buffers():
            if buffer.is_floating_point():
                dist.all_reduce(buffer.data)
                buffer.data /= self.world_size

    def gather(self, value: torch.Tensor) -> torch.Tensor:
        """(world_size, *value.shape) stack of every process's tensor (same shape on all)."""
        if not self.enabled:
            return value[None]
        out = [torch.empty_like(value) for _ in range(self.world_size)]
        dist.all_gather(out, value)
        return torch.stack(out)

    def weight_digests(self, module: torch.nn.Module, device: torch.device) -> list[str]:
        """SHA-256 of this process's parameters, gathered from every rank (equal when in sync)."""
        digest = hashlib.sha256()
        for name, tensor in sorted(module.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        raw = torch.frombuffer(bytearray(digest.digest()), dtype=torch.uint8).to(device)
        return [bytes(row.cpu().tolist()).hex() for row in self.gather(raw)]
