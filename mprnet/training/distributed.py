"""This process's place among the processes of one training run, and its device.

One process (CPU or one GPU) is ``Dist()``. Under ``torchrun`` or ``mprnet train`` with
``runtime.processes: N`` (``launch.py``), ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` describe a process
group of DistributedDataParallel: ``nccl`` on GPUs, ``gloo`` on the CPU; ``data.batch_size`` is the
global batch, split evenly over the processes. torch is imported inside, by the process that trains.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError


@dataclass
class Dist:
    """This process's place in a ``torchrun`` process group (one process: ``Dist()``).

    ``cpu_group`` is the group for small CPU tensors (``any_rank``): the default group under
    ``gloo``, a ``gloo`` group beside ``nccl`` on GPUs, so that agreeing on a flag never waits
    for the GPU queue.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialised_here: bool = False
    cpu_group: Any = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device_type: str) -> "Dist":
        """Join the group described by ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` (set by torchrun),
        ``nccl`` for ``device_type`` ``cuda``, ``gloo`` otherwise; one process without them."""
        import torch.distributed as dist

        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
        created = False
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
            created = True
        cpu_group = None if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")
        return cls(rank, world, local, created, cpu_group)

    def all_reduce(self, tensor, op: str = "sum"):
        if self.world_size > 1:
            import torch.distributed as dist

            dist.all_reduce(tensor, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
        return tensor

    def any_rank(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any process; every process must call it (collective)."""
        if self.world_size == 1:
            return flag
        import torch
        import torch.distributed as dist

        votes = torch.tensor([1 if flag else 0], dtype=torch.int32)
        dist.all_reduce(votes, op=dist.ReduceOp.MAX, group=self.cpu_group)
        return bool(votes.item())

    def reduce_floats(self, values: list[float], op: str = "sum") -> list[float]:
        """``values`` summed (``op`` ``sum``) or their maximum (``max``) over the processes, on the
        CPU group (no wait for the GPU queue); collective like :meth:`any_rank`."""
        if self.world_size == 1:
            return list(values)
        import torch
        import torch.distributed as dist

        tensor = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM, group=self.cpu_group)
        return tensor.tolist()

    def close(self) -> None:
        if self.initialised_here:
            import torch.distributed as dist

            dist.destroy_process_group()


def pick_device(setting: str, dist_local_rank: int):
    import torch

    if setting == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", dist_local_rank)
        return torch.device("cpu")
    if setting.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"runtime.device: {setting} requested but CUDA is not available")
        if setting == "cuda":
            return torch.device("cuda", dist_local_rank)
    return torch.device(setting)
