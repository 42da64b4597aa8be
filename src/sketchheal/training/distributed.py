"""Data-parallel training under ``torchrun``: who this process is, and the few collectives the loop needs.

Launched by ``torchrun --nproc_per_node=K`` (``RANK`` and ``WORLD_SIZE`` set, ``WORLD_SIZE > 1``) the process joins
the group (NCCL on CUDA, gloo on CPU); otherwise it is a world of one and every helper here is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes files and prints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def launched_rank() -> int:
    """This process's rank as ``torchrun`` set it (0 without ``torchrun``), before the group is joined."""
    return int(os.environ.get("RANK", "0"))


def setup_distributed(device_type: str) -> Dist:
    """Initialise the process group when launched by torchrun (RANK/WORLD_SIZE set), else a single process."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Dist()
    backend = "nccl" if device_type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return Dist(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", 0)))


def teardown_distributed(ddp: Dist) -> None:
    """Wait for every rank, then leave the group (after training)."""
    if ddp.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier(ddp: Dist) -> None:
    if ddp.enabled:
        dist.barrier()


def gather_objects(ddp: Dist, obj: Any) -> Any:
    """Every rank's ``obj`` as a list (rank order) under DDP; ``obj`` itself in a world of one."""
    if not ddp.enabled:
        return obj
    gathered: list[Any] = [None] * ddp.world
    dist.all_gather_object(gathered, obj)
    return gathered


def all_min(ddp: Dist, values: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Element-wise minimum over the ranks of a small int tensor (one decision every rank takes alike)."""
    if not ddp.enabled:
        return values
    values = values.to(device)
    dist.all_reduce(values, op=dist.ReduceOp.MIN)
    return values.cpu()


def all_mean(ddp: Dist, values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Mean over the ranks of each value of ``values`` (the same keys on every rank)."""
    if not ddp.enabled or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], device=device)
    dist.all_reduce(t)
    return {k: float(v) / ddp.world for k, v in zip(keys, t.tolist())}


__all__ = ["Dist", "all_mean", "all_min", "barrier", "gather_objects", "launched_rank", "setup_distributed",
           "teardown_distributed"]
