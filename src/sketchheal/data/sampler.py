"""The training order: a function of ``(seed, epoch)`` only, so that a resumed run sees the same batches.

Epoch ``e`` is the permutation ``default_rng([seed, e]).permutation(n)``; global batch ``b`` is
``perm[b*B:(b+1)*B]`` (the last ``n % B`` items of the epoch are left out), and rank ``r`` of ``world`` takes the
``r``-th slice of ``B / world`` items of every global batch (disjoint shards, the same global batch as one process).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
from torch.utils.data import Sampler


def batches_per_epoch(n: int, batch_size: int) -> int:
    """Full global batches in one epoch of ``n`` items (the remainder is dropped)."""
    return n // batch_size


class EpochBatchSampler(Sampler):
    """Yields this rank's share (a list of item indices) of each global batch of one epoch.

    ``start`` skips the first batches (a resume in the middle of an epoch) without rendering them.
    """

    def __init__(self, n: int, *, batch_size: int, seed: int, epoch: int, start: int = 0, rank: int = 0,
                 world: int = 1):
        if batch_size % world:
            raise ValueError(f"global batch {batch_size} is not divisible by the {world} processes")
        if n < batch_size:
            raise ValueError(f"the training split has {n} sketches, fewer than one batch of {batch_size}")
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is not one of the {world} processes")
        self.n, self.batch_size, self.seed, self.epoch, self.start = n, batch_size, seed, epoch, start
        self.rank, self.world = rank, world

    def __len__(self) -> int:
        return batches_per_epoch(self.n, self.batch_size) - self.start

    def __iter__(self) -> Iterator[list[int]]:
        perm = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        per_rank = self.batch_size // self.world
        for b in range(self.start, batches_per_epoch(self.n, self.batch_size)):
            batch = perm[b * self.batch_size:(b + 1) * self.batch_size]
            yield batch[self.rank * per_rank:(self.rank + 1) * per_rank].tolist()


__all__ = ["EpochBatchSampler", "batches_per_epoch"]
