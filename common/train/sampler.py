"""Seeded, resumable data order shared by every process of a (distributed) run."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from hyperplex.common.errors import InvalidParameterError

__all__ = ["EpochBatches"]


class EpochBatches(torch.utils.data.Sampler[list[int]]):
    """Batches of dataset indices for one epoch, the same permutation on every process.

    The epoch's order is ``randperm(n)`` seeded by ``(seed, epoch)``. Global batch ``s`` is the
    slice ``[s * B * W, (s + 1) * B * W)`` of that order and process ``r`` takes its ``r``-th part of
    ``B`` indices, so W processes with batch B see exactly the tiles one process would see with batch
    ``B * W``. The incomplete last global batch is dropped (every process makes the same number of steps).

    Args:
        size: Dataset length.
        batch_size: Per-process batch size B.
        seed: Base seed of the order.
        epoch: Epoch number (changes the permutation).
        rank: This process's rank r.
        world_size: Number of processes W.
        start: First global batch to yield (resume in the middle of an epoch).

    Raises:
        InvalidParameterError: If the dataset is smaller than one global batch.
    """

    def __init__(
        self, size: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1, start: int = 0
    ):
        self.size, self.batch_size, self.seed, self.epoch = size, batch_size, seed, epoch
        self.rank, self.world_size, self.start = rank, world_size, start
        if len(self) + start < 1:
            raise InvalidParameterError(
                f"{size} training tiles are fewer than one global batch ({batch_size} x {world_size} processes); "
                "lower `batch_size` or add tiles."
            )

    @staticmethod
    def steps_per_epoch(size: int, batch_size: int, world_size: int = 1) -> int:
        """Number of global batches in one epoch."""
        return size // (batch_size * world_size)

    def __len__(self) -> int:
        return max(self.steps_per_epoch(self.size, self.batch_size, self.world_size) - self.start, 0)

    def __iter__(self) -> Iterator[list[int]]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        glob = self.batch_size * self.world_size
        for step in range(self.start, self.start + len(self)):
            first = step * glob + self.rank * self.batch_size
            yield order[first : first + self.batch_size]
