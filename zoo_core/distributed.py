"""Distributed training under torchrun: process group set-up, rank facts and the few collectives we use."""

from __future__ import annotations

import atexit
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK): NCCL on CUDA, gloo on CPU."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if device_type == "cuda":
        torch.cuda.set_device(info.local_rank)
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if "TORCHELASTIC_RESTART_COUNT" in os.environ:
            dist.init_process_group(backend, store=attempt_store(info), rank=info.rank, world_size=world_size)
        else:
            dist.init_process_group(backend)
        # left when the process ends, however it ends: a group still alive while the interpreter tears
        # down can abort it ("terminate called without an active exception") after the work is done
        atexit.register(cleanup)
    return info


def attempt_store(info: DistInfo) -> dist.Store:
    """torchrun's store, its keys prefixed by the restart attempt.

    Under torchrun the workers share the agent's store, which outlives a restart; env:// adds no prefix per
    attempt, so restarted workers read the addresses their dead predecessors published there and fail to
    connect (pytorch/pytorch#167288). One prefix per attempt gives each its own keys."""
    from torch.distributed.constants import default_pg_timeout

    agent_hosts_it = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(
        os.environ["MASTER_ADDR"],
        int(os.environ["MASTER_PORT"]),
        info.world_size,
        is_master=not agent_hosts_it and info.rank == 0,
        timeout=default_pg_timeout,
    )
    return dist.PrefixStore(f"/zoo/attempt_{os.environ['TORCHELASTIC_RESTART_COUNT']}", store)


def device_for(device: str, info: DistInfo) -> torch.device:
    """Each rank gets its own GPU (its local rank); CPU ranks share the CPU."""
    if device == "cuda" and info.enabled:
        return torch.device("cuda", info.local_rank)
    return torch.device(device)


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all ranks in place (a no-op in a single process)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor)
    return tensor


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (e.g. the run directory's name, which holds a timestamp)."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    holder = [obj]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
