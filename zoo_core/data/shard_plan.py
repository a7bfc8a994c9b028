"""The order of a sharded data set's samples in one epoch: which shards, and which run of samples in each,
every rank and every DataLoader worker reads. Pure functions of the shard sizes, (seed, epoch) and the
rank, so a resumed run and every rank compute the same plan without talking to each other.

- The epoch's sequence: the shards in the order ``randperm`` draws from ``mix(seed, epoch)`` (in their own
  order without shuffling), their samples one after another: N positions.
- Rank ``r`` takes one contiguous run of that sequence, of ``order.shard_size`` samples (as the map-style
  sampler gives it): the floor of N / world_size when the tail is dropped, the ceiling (wrapping around to
  the start) when padded, else its exact share. So the ranks together read every sample once per epoch
  (when N divides, or without drop and pad), and each rank opens only about 1/world_size of the shards.
- The rank's batches are dealt to the workers in turn: batch ``b`` is worker ``b % K``'s; each worker
  reads one contiguous run of the rank's sequence holding its batches' samples. A DataLoader takes one
  item from each worker in turn, so it yields batches 0, 1, 2… in order (``batch_roles``).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

import torch

from zoo_core.data.order import mix, shard_size

Piece = tuple[int, int, int]  # (shard, first sample, end sample) within the shard


def shards_in_order(sizes: Sequence[int], *, seed: int, epoch: int, shuffle: bool) -> list[int]:
    """The shards in the order the epoch reads them."""
    if not shuffle:
        return list(range(len(sizes)))
    generator = torch.Generator().manual_seed(mix(seed, epoch))
    return torch.randperm(len(sizes), generator=generator).tolist()


def rank_run(n: int, *, rank: int, world_size: int, drop_last: bool, pad: bool) -> tuple[int, int]:
    """(first position, samples) of rank ``rank``'s run of the epoch's N-sample sequence; positions past N
    wrap around to the start (padding)."""
    counts = [shard_size(n, drop_last, world_size, r, pad) for r in range(world_size)]
    return sum(counts[:rank]), counts[rank]


def batch_sizes(samples: int, batch_size: int, drop_last: bool) -> list[int]:
    """The sizes of a rank's batches: full ones, then the remainder unless dropped."""
    full, rest = divmod(samples, batch_size)
    return [batch_size] * full + ([rest] if rest and not drop_last else [])


def role_batches(sizes: Sequence[int], role: int, roles: int) -> list[int]:
    """The rank batches worker ``role`` of ``roles`` makes: ``role``, ``role + roles``…"""
    return list(range(role, len(sizes), roles))


def role_run(sizes: Sequence[int], role: int, roles: int) -> tuple[int, int]:
    """(first position within the rank's run, samples) that worker ``role`` reads: the roles' runs follow
    one another, each as long as its batches."""
    counts = [sum(sizes[b] for b in role_batches(sizes, r, roles)) for r in range(roles)]
    return sum(counts[:role]), counts[role]


def done_before(batch: int, role: int, roles: int) -> int:
    """How many of worker ``role``'s batches come before rank batch ``batch`` (a resumed epoch skips them)."""
    return max(0, math.ceil((batch - role) / roles))


def pieces(sizes: Sequence[int], order: Sequence[int], start: int, count: int) -> list[Piece]:
    """The runs of samples, shard by shard, at positions ``start .. start + count`` of the sequence of the
    shards in ``order`` (wrapping past its end)."""
    ends = []
    total = 0
    for shard in order:
        total += sizes[shard]
        ends.append(total)
    out: list[Piece] = []
    position, left = start, count
    while left > 0:
        at = position % total
        k = bisect.bisect_right(ends, at)
        first = at - (ends[k - 1] if k else 0)
        take = min(left, sizes[order[k]] - first)
        out.append((order[k], first, first + take))
        position, left = position + take, left - take
    return out


def worker_pieces(
    sizes: Sequence[int],
    *,
    seed: int,
    epoch: int,
    shuffle: bool,
    rank: int,
    world_size: int,
    drop_last: bool,
    pad: bool,
    batch_size: int,
    role: int,
    roles: int,
) -> tuple[list[Piece], list[tuple[int, int]]]:
    """(the pieces worker ``role`` reads, in order; the (rank batch number, size) of the batches it makes
    from them, in order)."""
    n = sum(sizes)
    first, samples = rank_run(n, rank=rank, world_size=world_size, drop_last=drop_last, pad=pad)
    batches = batch_sizes(samples, batch_size, drop_last)
    offset, count = role_run(batches, role, roles)
    order = shards_in_order(sizes, seed=seed, epoch=epoch, shuffle=shuffle)
    made = [(b, batches[b]) for b in role_batches(batches, role, roles)]
    return pieces(sizes, order, first + offset, count), made
