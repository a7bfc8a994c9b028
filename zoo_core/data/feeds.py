"""The ways a batch reaches the device, one class each: held on the device (``DeviceLoader``), or through
DataLoader workers (``StreamLoader``: from host memory, decoded in the workers, or decoded on the device),
and what they share (``_EpochLoader``: the epoch, the shard, each batch's generator)."""

from __future__ import annotations

import abc
import dataclasses
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch

from zoo_core.data import ops
from zoo_core.data.batch_buffers import BatchBuffers
from zoo_core.data.ops import random_window
from zoo_core.data.order import FLIP_STREAM, Order, ShardSampler, mix, shard_order, shard_size
from zoo_core.data.plan import crops_in_workers, normalizes_in_workers
from zoo_core.data.transform import Augment, BatchTransform
from zoo_core.data.workers import Collate, _collate_encoded, _Encoded, _WorkerAugment
from zoo_core.errors import ZooError
from zoo_core.kit import contracts
from zoo_core.progress import track

Batch = tuple[torch.Tensor, torch.Tensor]
_AUGMENT_FIELDS = set(Augment.__dataclass_fields__)
_ORDER_FIELDS = set(Order.__dataclass_fields__)


def loader_options(
    augment: Augment | None, order: Order | None, keywords: dict[str, Any]
) -> tuple[Augment, Order]:
    """The option objects of a loader, from the objects or from their fields spelled as keywords (the
    older calling form, ``crop_padding=4, seed=1``); an unknown keyword is a TypeError, as in a signature."""
    unknown = sorted(set(keywords) - _AUGMENT_FIELDS - _ORDER_FIELDS)
    if unknown:
        raise TypeError(f"unexpected loader option(s): {', '.join(unknown)}")
    augment_kw = {k: v for k, v in keywords.items() if k in _AUGMENT_FIELDS}
    order_kw = {k: v for k, v in keywords.items() if k in _ORDER_FIELDS}
    if augment_kw.get("size") is not None:
        augment_kw["size"] = (int(augment_kw["size"][0]), int(augment_kw["size"][1]))
    augment = dataclasses.replace(augment or Augment(), **augment_kw)
    order = dataclasses.replace(order or Order(), **order_kw)
    return augment, order


def default_workers() -> int:
    """DataLoader workers when none are asked for: one per core, at most 8."""
    return min(8, os.cpu_count() or 1)


class _EpochLoader(abc.ABC):
    """What both loaders share: options, the epoch, sharding arithmetic and per-batch generators."""

    def __init__(
        self,
        n: int,
        *,
        batch_size: int,
        device: torch.device | str,
        mean: Sequence[float],
        std: Sequence[float],
        train: bool,
        augment: Augment | None = None,
        order: Order | None = None,
        **keywords: Any,
    ) -> None:
        augment, order = loader_options(augment, order, keywords)
        seed, rank, world_size = order.seed, order.rank, order.world_size
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, not {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        if n == 0:
            raise ValueError("the data set is empty")
        self.n = n
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.train = train
        self.shuffle = train if order.shuffle is None else order.shuffle
        self.drop_last = train if order.drop_last is None else order.drop_last
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.mean = tuple(float(m) for m in mean)  # the normalization, as checkpoints record it
        self.std = tuple(float(v) for v in std)
        self.epoch = 0
        self._generator = torch.Generator(device=self.device)
        self.transform = BatchTransform(mean, std, self.device, train=train, augment=augment)
        self._first_flips: torch.Tensor | None = None
        if self.transform.alternate_flip:
            coin = torch.Generator(device=self.device).manual_seed(mix(seed, FLIP_STREAM))
            self._first_flips = torch.rand(n, generator=coin, device=self.device) < 0.5
        self.pad = train and not self.drop_last  # equal step counts matter only when training
        self.num_samples = shard_size(n, self.drop_last, world_size, rank, self.pad)
        if self.drop_last:
            self._batches = self.num_samples // batch_size
        else:
            self._batches = math.ceil(self.num_samples / batch_size)

    def __len__(self) -> int:
        """Batches per epoch on this rank."""
        return self._batches

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order and augmentations the next iteration replays."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[Batch]:
        return self.iter_from(0)

    @abc.abstractmethod
    def iter_from(self, batch_index: int) -> Iterator[Batch]:
        """The batches of the current epoch from ``batch_index`` on, exactly as a full epoch yields them."""

    def _workers_augment(self, workers: int, wanted: bool | None, decode_on_device: bool = False) -> bool:
        """Whether the DataLoader workers cut the crops and draw the flips (``plan.crops_in_workers``)."""
        t = self.transform
        return crops_in_workers(
            device_type=self.device.type,
            train=self.train,
            resized_crop=t.resized_crop,
            crop_padding=t.crop_padding,
            workers=workers,
            wanted=wanted,
            decode_on_device=decode_on_device,
            flip=t.draws_flips,
        )

    def _cuts_to_workers(
        self, stored: tuple[int, int]
    ) -> tuple[tuple[int, int], bool, tuple[int, int] | None]:
        """(size, flip, centre) for workers that cut and flip images stored at ``stored``: the random
        resized crops, or else (``centre``) the centre crop to the size, and the random flips (alternating
        ones go by index). The transform no longer does them."""
        t = self.transform
        flip, size = t.draws_flips, (tuple(t.size) if t.size else tuple(stored))
        centre = None if t.resized_crop else size
        t.resized_crop = False  # the batches arrive cut to size
        t.flip = t.flip and not flip  # and flipped
        return size, flip, centre  # type: ignore[return-value]

    def _workers_normalize(self, workers: int) -> bool:
        """Whether the workers normalize the batches (``plan.normalizes_in_workers``, after the cuts were
        handed to them); when they do, the transform no longer does."""
        t = self.transform
        normalize = normalizes_in_workers(
            device_type=self.device.type,
            workers=workers,
            resized_crop=t.resized_crop,
            crop_padding=t.crop_padding,
            size=t.size,
            sized_in_workers=self.augment_in_workers,
        )
        t.normalize = not normalize
        return normalize

    def _seeded(self, batch_index: int) -> torch.Generator:
        """The loader's device generator, seeded for this batch's augmentations when it has any."""
        if self.transform.random:
            self._generator.manual_seed(mix(self.seed, self.epoch, self.rank, batch_index))
        return self._generator

    def _flips(self, index: torch.Tensor) -> torch.Tensor | None:
        """Which images of a batch (data-set indices ``index``) the alternating flip mirrors this epoch."""
        if self._first_flips is None:
            return None
        return self._first_flips[index.to(self.device)] ^ bool(self.epoch % 2)

    def _order(self, generator: torch.Generator) -> torch.Tensor:
        return shard_order(
            self.n,
            seed=self.seed,
            epoch=self.epoch,
            shuffle=self.shuffle,
            drop_last=self.drop_last,
            rank=self.rank,
            world_size=self.world_size,
            generator=generator,
            pad=self.pad,
        )


class DeviceLoader(_EpochLoader):
    """Batches of an in-memory uint8 data set that lives on ``device`` for the whole run.

    Yields ``(x, y)``: float32 normalized N×C×H×W (channels_last when asked) and int64 labels, on ``device``,
    with random crop (``crop_padding``) and flip applied per image when ``train``. No host synchronisation.
    When it crops, ``images`` holds the data set padded by ``crop_padding`` (once, on the device), so
    each batch's windows are gathered straight from it: (H+2p)(W+2p)/HW the memory, 1.56× for CIFAR-10.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, **options: Any) -> None:
        """``options``: ``_EpochLoader``'s (batch_size, device, mean, std, train, augment, order)."""
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be uint8 N×C×H×W, got {images.dtype} {tuple(images.shape)}")
        if labels.shape != images.shape[:1]:
            raise ValueError(f"{len(images)} images but labels of shape {tuple(labels.shape)}")
        super().__init__(len(images), **options)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device, torch.int64)
        self._size = (images.shape[2], images.shape[3])
        # padded once here, so each batch's crop windows are gathered straight from the data set (not when
        # the images are first cut to the model's size: the padding then follows the cut)
        self._pad = 0 if self.transform.cuts(self._size) else self.transform.crop_padding
        if self._pad:
            self.images = ops.pad(self.images, self._pad, self.transform.padding_mode)

    def first_images(self, n: int) -> torch.Tensor:
        """The data set's first ``n`` images, normalized, unaugmented (e.g. for a data-dependent init)."""
        p, (h, w) = self._pad, self._size
        return self.transform.first(self.images[:n, :, p : p + h, p : p + w])

    def iter_from(self, batch_index: int) -> Iterator[Batch]:
        """The batches of the current epoch from ``batch_index`` on, exactly as a full epoch yields them."""
        order = self._order(self._generator)
        for b in range(batch_index, len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            generator = self._seeded(b)
            if self._pad:
                x = random_window(self.images, self._size, generator, index=idx)
                x = self.transform.finish(x, generator, self._flips(idx))
            else:
                x = self.transform(self.images.index_select(0, idx), generator, self._flips(idx))
            yield x, self.labels.index_select(0, idx)


class StreamLoader(_EpochLoader):
    """Batches of a ``torch.utils.data.Dataset`` of (uint8 C×H×W tensor, int label) too large for memory:
    DataLoader workers decode and stack uint8 batches into pinned memory; crop, flip and normalization then
    run on ``device`` as in ``DeviceLoader``. Order, sharding and resumption follow the same rules.

    ``augment_in_workers`` (default: on a CPU) has the workers cut the random resized crops and draw the
    random flips, image by image (``_WorkerAugment``), so that the main process's cores stay with the
    model; on a CPU the workers also stack channels_last batches when asked. ``decode_on_device`` (default:
    the data set's ``decode == "device"``) has the workers only read files (its ``encoded``) and the data
    set decode each batch on ``device`` (its ``decode_batch``)."""

    def __init__(
        self,
        dataset: torch.utils.data.Dataset,
        *,
        num_workers: int | None = None,
        augment_in_workers: bool | None = None,
        decode_on_device: bool | None = None,
        **options: Any,
    ) -> None:
        """``options``: ``_EpochLoader``'s (batch_size, device, mean, std, train, augment, order)."""
        super().__init__(len(dataset), **options)
        batch_size = self.batch_size
        self.dataset = dataset
        workers = default_workers() if num_workers is None else num_workers
        if decode_on_device is None:  # the data set's choice (contracts.StreamedDataset)
            decode_on_device = contracts.decodes_on_device(dataset)
        self.decode_on_device = bool(decode_on_device)
        if self.decode_on_device:  # the workers read files, the device decodes them: it cuts the crops too
            dataset = _Encoded(dataset)
        self.augment_in_workers = self._workers_augment(workers, augment_in_workers, self.decode_on_device)
        crops = None
        if self.augment_in_workers:
            stored = (int(dataset[0][0].shape[-2]), int(dataset[0][0].shape[-1]))
            size, flip, centre = self._cuts_to_workers(stored)
            dataset, crops = _WorkerAugment(dataset, size), (stored, batch_size, flip, centre)
        self.normalize_in_workers = not self.decode_on_device and self._workers_normalize(workers)
        collate: Any = None
        channels_last = self.transform.channels_last and self.device.type == "cpu"
        pinned = self.device.type == "cuda"
        self._buffers = BatchBuffers(0 if pinned or self.decode_on_device else workers)
        if self.decode_on_device:
            collate = _collate_encoded
        elif self.normalize_in_workers:
            collate = Collate(channels_last, self.transform.normalizer, self._buffers)
        elif channels_last:
            collate = Collate(channels_last, buffers=self._buffers)
        order = dict(shuffle=self.shuffle, drop_last=self.drop_last, rank=self.rank, pad=self.pad)
        self._sampler = ShardSampler(
            self.n, self.num_samples, crops=crops, seed=self.seed, world_size=self.world_size, **order
        )
        self._loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=self._sampler,
            drop_last=self.drop_last,
            num_workers=workers,
            pin_memory=pinned,
            persistent_workers=workers > 0,
            collate_fn=collate,
        )

    def first_images(self, n: int) -> torch.Tensor:
        """The data set's first ``n`` images, normalized, unaugmented (e.g. for a data-dependent init)."""
        indices = track(range(min(n, self.n)), "reading images for data-init")
        images = torch.stack([self.dataset[i][0] for i in indices]).to(self.device)
        return self.transform.first(images)

    def iter_from(self, batch_index: int) -> Iterator[Batch]:
        """The batches of the current epoch from ``batch_index`` on; skipped batches are never decoded."""
        self._sampler.epoch = self.epoch
        self._sampler.start = batch_index * self.batch_size
        # the same order the sampler draws, for the alternating flip's per-image rule (host generator)
        order = self._order(torch.Generator()) if self._first_flips is not None else None
        for b, (x, y) in enumerate(_one_line_errors(self._loader), start=batch_index):
            if self.decode_on_device:  # an image that did not decode: another of the batch, its label too
                x, stand_ins = self.dataset.decode_batch(x, self.device)
                for k, j in stand_ins:
                    y[k] = y[j]
            self._buffers.received(x)
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, torch.int64, non_blocking=True)
            idx = order[b * self.batch_size : b * self.batch_size + len(x)] if order is not None else None
            yield self.transform(x, self._seeded(b), None if idx is None else self._flips(idx)), y


def _one_line_errors(batches: Iterable[Batch]) -> Iterator[Batch]:
    """The batches of a DataLoader; a zoo error raised in a worker (e.g. an unreadable image under
    --strict) arrives wrapped in the worker's traceback: it is raised again with its own message alone."""
    try:
        yield from batches
    except ZooError as exc:
        message = str(exc).strip().splitlines()[-1]
        if " worker process " in str(exc) and ": " in message:  # "zoo_core.errors.ZooError: …"
            raise type(exc)(message.split(": ", 1)[1]) from None
        raise
