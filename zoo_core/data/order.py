"""The order of the samples and every seed of the data path: one seed helper (``mix``), the shard of each
rank, and the sampler that carries the order (and, where the workers cut crops, each batch's draws) into a
DataLoader.

Randomness is a pure function of the seed, so a resumed run replays the same batches:
- the sample order of epoch ``e`` is ``randperm(N)`` from a generator seeded with ``mix(seed, e)``;
- crop offsets and flips of batch ``b`` of epoch ``e`` on rank ``r`` come from a generator seeded with
  ``mix(seed, e, r, b)``, so ``iter_from(b)`` yields exactly what an uninterrupted epoch yields from ``b`` on;
- with ``alternate_flip`` (airbench's derandomised flip) image ``i`` is mirrored in epoch ``e`` exactly when
  ``first[i] != (e odd)``, ``first`` being a fair coin per image drawn once from ``mix(seed, FLIP_STREAM)``:
  each image is seen mirrored every other epoch, half the images starting mirrored;
- on a CPU, random resized crops and flips are cut in the DataLoader workers, image by image, for streamed
  and in-memory sets alike, but the sampler draws them from the same generator, seeded the same way, as
  the batch would: the batches equal those cut on the batch within one level (``ops.resized_crop_one``
  against ``ops.resized_crop``), and a streamed set's equal the in-memory set's exactly.
Sharding: rank ``r`` takes every ``world_size``-th index of the permutation from ``r``, so the union of the
ranks' batch ``b`` is the global batch ``b`` of a single process. For training the permutation is first cut
to a multiple of ``world_size`` (dropping the tail when ``drop_last``, else padding it by wrapping around, as
DistributedSampler does), so every rank takes the same number of steps; evaluation shards are not padded
(they differ by at most one sample), so distributed metrics count every sample exactly once.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from zoo_core.data.ops import centre_offsets, resized_crop_boxes

FLIP_STREAM = 0x6F6C6966  # separates the seed of the first-epoch flips from every other stream
AUG_STREAM = 0x67756161  # separates the seeds of the trainer's batch augmentations (--aug)


@dataclass(frozen=True)
class Order:
    """Which samples a loader yields, in what order: ``seed`` of the order and the augmentations, this
    process's ``rank`` of ``world_size``, ``shuffle`` and ``drop_last`` (None: when training)."""

    seed: int = 0
    rank: int = 0
    world_size: int = 1
    shuffle: bool | None = None
    drop_last: bool | None = None


def mix(*parts: int) -> int:
    """A 63-bit seed from integers, the same on every platform and run (unlike ``hash``)."""
    data = b"".join(int(p).to_bytes(8, "little", signed=True) for p in parts)
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") >> 1


def shard_order(
    n: int,
    *,
    seed: int,
    epoch: int,
    shuffle: bool,
    drop_last: bool,
    rank: int,
    world_size: int,
    generator: torch.Generator,
    pad: bool = True,
) -> torch.Tensor:
    """This rank's sample indices for one epoch, on the generator's device (see the module docstring)."""
    device = generator.device
    if shuffle:
        generator.manual_seed(mix(seed, epoch))
        order = torch.randperm(n, generator=generator, device=device)
    else:
        order = torch.arange(n, device=device)
    if not (drop_last or pad):
        return order[rank:n:world_size]
    total = shard_size(n, drop_last, world_size) * world_size
    if total > n:  # pad by wrapping around (repeatedly, for a tiny data set on many ranks)
        order = order.repeat(math.ceil(total / n))
    return order[rank:total:world_size]


def shard_size(n: int, drop_last: bool, world_size: int, rank: int = 0, pad: bool = True) -> int:
    """Samples of ``rank``: the floor (drop the tail) or the ceiling (pad) of ``n / world_size``, or without
    either, its exact share."""
    if drop_last:
        return n // world_size
    return math.ceil(n / world_size) if pad else len(range(rank, n, world_size))


def batch_draws(
    seed: int, n: int, stored: tuple[int, int], flip: bool, centre: tuple[int, int] | None = None
) -> tuple[list[tuple[int, ...]], list[bool]]:
    """The random resized crop boxes and flips of one batch of ``n`` images stored at (H, W), drawn as
    ``BatchTransform`` draws them from a generator seeded with ``seed`` (``mix(seed, epoch, rank, b)``).
    With ``centre`` = (h, w) no box is drawn: each is the centre window of that size (``center_crop``'s)."""
    generator = torch.Generator().manual_seed(seed)
    if centre is None:
        boxes = [tuple(box) for box in resized_crop_boxes(n, stored[0], stored[1], generator).tolist()]
    else:
        (h, w), (top, left) = centre, centre_offsets(stored, centre)
        boxes = [(top, left, h, w)] * n
    flips = (torch.rand(n, generator=generator) < 0.5).tolist() if flip else [False] * n
    return boxes, flips


class ShardSampler(torch.utils.data.Sampler[int]):
    """One rank's indices for the epoch in ``epoch``, from position ``start`` (both set by the loader).

    With ``crops`` = (stored (H, W), batch size, flip, centre) it yields (index, box, flip) instead: each
    batch's random resized crop boxes (with ``centre``, its centre windows) and flips drawn as
    ``BatchTransform`` draws them for that batch, from a generator seeded with ``mix(seed, epoch, rank,
    b)``, for the workers to apply (``_WorkerAugment``).
    It holds plain values, not the loader, so no reference cycle keeps DataLoader workers alive."""

    def __init__(self, n: int, num_samples: int, crops: tuple[Any, ...] | None = None, **order: Any) -> None:
        self.n, self.num_samples, self.order = n, num_samples, order
        self.crops = crops
        self.epoch = 0
        self.start = 0

    def __iter__(self) -> Iterator[int] | Iterator[tuple[int, tuple[int, ...], bool]]:
        indices = shard_order(self.n, epoch=self.epoch, generator=torch.Generator(), **self.order)
        chosen = indices[self.start :].tolist()
        if self.crops is None:
            return iter(chosen)
        return self._with_crops(chosen)

    def _with_crops(self, chosen: list[int]) -> Iterator[tuple[int, tuple[int, ...], bool]]:
        stored, batch_size, flip, centre = self.crops
        first = self.start // batch_size
        for b in range(first, first + math.ceil(len(chosen) / batch_size)):
            batch = chosen[(b - first) * batch_size : (b - first + 1) * batch_size]
            seed = mix(self.order["seed"], self.epoch, self.order["rank"], b)
            boxes, flips = batch_draws(seed, len(batch), stored, flip, centre)
            yield from zip(batch, boxes, flips, strict=True)

    def __len__(self) -> int:
        return self.num_samples - self.start
