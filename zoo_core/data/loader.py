"""Batches on the training device: shuffled by a seeded generator, sharded by rank, augmented and
normalized a whole batch at a time. ``make_loader`` composes them: it chooses the feed (``feeds``), gives it
the order (``order``) and the transform (``transform``).

In-memory data sets (uint8 N×C×H×W) move to the device once (``DeviceLoader``); larger ones stream through
DataLoader workers with pinned memory and then take the same on-device steps (``StreamLoader``). Where each
concern lives: ``decode`` (image files to pixels), ``ops`` (batched kernels, the geometric rules, the one
normalize), ``order`` (every seed, the shards, the sampler), ``transform`` (``Augment``, ``BatchTransform``),
``feeds`` (the loaders), ``shard_plan`` and ``shard_feed`` (data sets read shard by shard), ``workers`` (the
DataLoader side), ``memory`` (the memory plan), ``stats`` (channel statistics).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

import torch

from zoo_core.data.feeds import Batch, DeviceLoader, StreamLoader, default_workers, loader_options
from zoo_core.data.order import FLIP_STREAM, Order, ShardSampler, mix, shard_order, shard_size
from zoo_core.data.plan import FeedPlan, plan_feed
from zoo_core.data.stats import channel_stats
from zoo_core.data.transform import Augment, BatchTransform
from zoo_core.data.workers import _TensorPairs
from zoo_core.kit import contracts
from zoo_core.progress import track

__all__ = [
    "FLIP_STREAM",
    "Augment",
    "Batch",
    "BatchTransform",
    "DeviceLoader",
    "Order",
    "ShardSampler",
    "StreamLoader",
    "make_loader",
    "mix",
    "shard_order",
    "shard_size",
]


def make_loader(
    dataset: Any,
    *,
    batch_size: int,
    device: torch.device | str,
    train: bool,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    num_workers: int | None = None,
    augment: Augment | None = None,
    order: Order | None = None,
    augment_in_workers: bool | None = None,
    **keywords: Any,
) -> DeviceLoader | StreamLoader:
    """A ``DeviceLoader`` for an in-memory data set (``images``/``labels`` tensors), else a ``StreamLoader``,
    as the feed plan says (``plan.plan_feed``; its line on stderr when a held set does not fit the GPU).

    ``mean``/``std`` default to the data set's own, else they are computed from its images (all of them in
    memory; up to 2,000 evenly spaced samples of a streamed one). ``augment`` and ``order`` are the option
    objects (``transform.Augment``, ``order.Order``), or ``keywords`` their fields (``crop_padding=4``,
    ``seed=1``...). ``size`` defaults to the data set's ``input_size`` (H, W): images stored larger are cut
    to it (see ``BatchTransform``).
    """
    augment, order = loader_options(augment, order, keywords)
    if augment.size is None and getattr(dataset, "input_size", None) is not None:
        augment = dataclasses.replace(augment, size=tuple(int(n) for n in dataset.input_size[1:]))
    mean = mean if mean is not None else getattr(dataset, "mean", None)
    std = std if std is not None else getattr(dataset, "std", None)
    in_memory = contracts.is_in_memory(dataset)
    if mean is None or std is None:
        mean, std = _statistics(dataset, in_memory)
    common = dict(batch_size=batch_size, device=device, mean=mean, std=std, train=train)
    common.update(augment=augment, order=order)
    if not in_memory and contracts.is_sharded(dataset):  # read shard by shard (shard_plan)
        from zoo_core.data.shard_feed import ShardLoader

        return ShardLoader(dataset, num_workers=num_workers, augment_in_workers=augment_in_workers, **common)
    plan = _plan(dataset, in_memory, torch.device(device), train, augment, num_workers, augment_in_workers)
    if in_memory and plan.feed == "host" and not plan.crops_in_workers:  # not where the user would expect
        print(plan.line, file=sys.stderr, flush=True)
    if plan.feed == "device":
        return DeviceLoader(dataset.images, dataset.labels, **common)
    if in_memory:  # from host memory: with workers where they cut the crops, else straight from the tensor
        pairs = _TensorPairs(dataset.images, dataset.labels)
        workers = num_workers if plan.crops_in_workers else 0
        return StreamLoader(pairs, num_workers=workers, augment_in_workers=plan.crops_in_workers, **common)
    return StreamLoader(dataset, num_workers=num_workers, augment_in_workers=augment_in_workers, **common)


def _statistics(dataset: Any, in_memory: bool) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Channel statistics of a data set that declares none: of all its images in memory, of up to 2,000
    evenly spaced samples of a streamed one."""
    if in_memory:
        return channel_stats(dataset.images)
    step = max(1, len(dataset) // 2000)
    indices = track(range(0, len(dataset), step), "channel statistics (sample)")
    return channel_stats(torch.stack([dataset[i][0] for i in indices]))


def _plan(
    dataset: Any,
    in_memory: bool,
    device: torch.device,
    train: bool,
    augment: Augment,
    workers: int | None,
    wanted: bool | None,
) -> FeedPlan:
    """``plan_feed`` for this data set and these options, the GPU's free memory measured."""
    from zoo_core.data.memory import free_gpu_memory

    return plan_feed(
        in_memory=in_memory,
        device_type=device.type,
        train=train,
        resized_crop=augment.resized_crop,
        crop_padding=augment.crop_padding,
        workers=default_workers() if workers is None else workers,
        wanted=wanted,
        decode_on_device=not in_memory and contracts.decodes_on_device(dataset),
        shape=tuple(dataset.images.shape) if in_memory else (0, 0, 0, 0),
        free_device=free_gpu_memory(device) if in_memory and device.type == "cuda" else None,
    )
