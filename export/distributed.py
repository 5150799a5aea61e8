"""Data-parallel training on PyTorch's own engine (DistributedDataParallel).

`python -m export train` runs unchanged under `torchrun --nproc-per-node N`:
torchrun sets RANK and WORLD_SIZE, each process takes its share of every batch
(the global batch stays --batch-size, so a run takes the same steps as one
process), DDP averages the gradients, and only rank 0 writes the run directory
and reports. gloo on CPUs, NCCL on GPUs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    device: str = "cpu"  # where the network trains: "cpu" or "cuda:N"

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def main_first(self, work: Callable[[], T]) -> T:
        """Rank 0 does `work` first (filling the feature cache), the others after
        it, reading what it wrote: one cache, computed once."""
        if self.main:
            result = work()
            self.barrier()
            return result
        self.barrier()
        return work()

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over the processes."""
        if not self.distributed:
            return values
        import torch
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(tensor)
        return [float(v) for v in tensor]

    def agree(self, flags: list[bool]) -> list[bool]:
        """Rank 0's decisions, for every process (early stopping must stop all)."""
        if not self.distributed:
            return flags
        import torch
        import torch.distributed as dist

        tensor = torch.tensor([int(f) for f in flags], dtype=torch.int64)
        dist.broadcast(tensor, 0)
        return [bool(v) for v in tensor]

    def sync_buffers(self, model: Any) -> None:
        """BatchNorm statistics from rank 0, so that every process validates the
        same model (DDP syncs weights, and buffers only at the next forward)."""
        if not self.distributed:
            return
        import torch.distributed as dist

        for buffer in model.buffers():
            dist.broadcast(buffer.data, 0)

    def wrap(self, model: Any) -> Any:
        if not self.distributed:
            return model
        import torch
        from torch.nn.parallel import DistributedDataParallel

        if self.device.startswith("cuda"):
            return DistributedDataParallel(model, device_ids=[torch.device(self.device).index])
        return DistributedDataParallel(model)

    def shard(self, rows: Any) -> Any:
        """This process's share of a batch."""
        return rows[self.rank :: self.size] if self.distributed else rows

    def close(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.destroy_process_group()


def init_world(device: str = "auto") -> World:
    """The process group when launched by torchrun (WORLD_SIZE > 1), else one
    process. `device` "auto" trains on a GPU when torch sees one."""
    import torch

    cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    local = int(os.environ.get("LOCAL_RANK", "0"))
    where = f"cuda:{local}" if cuda else "cpu"
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World(device=where)
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    if cuda:
        torch.cuda.set_device(local)
    return World(dist.get_rank(), dist.get_world_size(), where)
