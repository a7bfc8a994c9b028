"""Batches of a sharded streamed data set (``contracts.is_sharded``: tar shards, object stores), read shard
by shard in DataLoader workers as ``shard_plan`` deals them: each rank reads its own run of the epoch's
shards, each worker its own run of the rank's, through a shuffle buffer seeded by (seed, epoch, rank,
worker), and makes whole batches. Crop, flip and normalization are then the shared ``_EpochLoader``'s.

Resumption is exact at every batch, with the same number of workers: ``iter_from(b)`` yields what an
uninterrupted epoch yields from batch ``b`` on. Each worker reads (without decoding) the samples of the
batches it made before ``b``: its shuffle buffer must see them to give the same order after.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import torch

from zoo_core.data.batch_buffers import BatchBuffers
from zoo_core.data.feeds import Batch, _EpochLoader, _one_line_errors, default_workers
from zoo_core.data.ops import resized_crop_one
from zoo_core.data.order import batch_draws, mix
from zoo_core.data.shard_plan import done_before, worker_pieces
from zoo_core.data.workers import Collate
from zoo_core.errors import ZooError
from zoo_core.progress import track

SHUFFLE_BUFFER = 512  # raw samples a worker holds to shuffle within (about 50 MB of 224-px JPEGs)
SHUFFLE_STREAM = 0x66667573  # separates the shuffle buffers' seeds from every other stream


class ShardLoader(_EpochLoader):
    """Batches of a sharded data set: see the module docstring. ``num_workers`` 0 reads in this process."""

    def __init__(
        self,
        dataset: Any,
        *,
        num_workers: int | None = None,
        augment_in_workers: bool | None = None,
        shuffle_buffer: int = SHUFFLE_BUFFER,
        **options: Any,
    ) -> None:
        super().__init__(len(dataset), **options)
        self.dataset = dataset
        workers = default_workers() if num_workers is None else num_workers
        self.augment_in_workers = self._workers_augment(workers, augment_in_workers)
        crops = None
        if self.augment_in_workers:  # the workers cut and flip; the transform no longer does
            stored = (int(dataset[0][0].shape[-2]), int(dataset[0][0].shape[-1]))
            size, flip, centre = self._cuts_to_workers(stored)
            crops = (stored, size, flip, centre)
        normalize = self._workers_normalize(workers)
        t = self.transform
        channels_last = t.channels_last and self.device.type == "cpu"
        pinned = self.device.type == "cuda"
        self._stream = _ShardStream(
            dataset,
            batch_size=self.batch_size,
            seed=self.seed,
            rank=self.rank,
            world_size=self.world_size,
            shuffle=self.shuffle,
            drop_last=self.drop_last,
            pad=self.pad,
            crops=crops,
            collate=Collate(
                channels_last, t.normalizer if normalize else None, BatchBuffers(0 if pinned else workers)
            ),
            buffer=shuffle_buffer if self.shuffle else 0,
        )
        self._loader = torch.utils.data.DataLoader(
            self._stream,
            batch_size=None,  # the workers make whole batches
            num_workers=workers,
            pin_memory=pinned,
        )

    def iter_from(self, batch_index: int) -> Iterator[Batch]:
        """The batches of the current epoch from ``batch_index`` on (the module docstring)."""
        self._stream.epoch, self._stream.start = self.epoch, batch_index
        # this pass's workers are new processes: a table of their own, whatever another pass left
        buffers = self._stream.collate.buffers = self._stream.collate.buffers.renewed()
        for b, (x, y, index) in enumerate(_one_line_errors(self._loader), start=batch_index):
            buffers.received(x)
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, torch.int64, non_blocking=True)
            yield self.transform(x, self._seeded(b), self._flips(index)), y

    def first_images(self, n: int) -> torch.Tensor:
        """The data set's first ``n`` images, normalized, unaugmented (e.g. for a data-dependent init)."""
        images: list[torch.Tensor] = []
        shards = track(range(len(self.dataset.shard_sizes)), "reading images for data-init", unit="shards")
        for shard in shards:
            for item in self.dataset.samples(shard, 0, self.dataset.shard_sizes[shard]):
                decoded = self.dataset.decode(item)
                if decoded is not None and len(images) < n:
                    images.append(decoded[0])
            if len(images) >= n:
                break
        return self.transform.first(torch.stack(images).to(self.device))


class _ShardStream(torch.utils.data.IterableDataset):
    """What each DataLoader worker runs: its pieces of shards, shuffled, decoded and batched. Plain values
    and the data set only, set anew by the loader before each epoch's iteration (the workers are started
    per epoch, so they see ``epoch`` and ``start``)."""

    def __init__(self, dataset: Any, **plan: Any) -> None:
        self.dataset = dataset
        self.crops = plan.pop("crops")
        self.collate = plan.pop("collate")
        self.buffer = plan.pop("buffer")
        self.plan = plan
        self.epoch = 0
        self.start = 0

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        info = torch.utils.data.get_worker_info()
        slot, roles = (info.id, info.num_workers) if info is not None else (0, 1)
        role = (slot + self.start) % roles  # the worker that makes batch `start` comes first
        sizes = list(self.dataset.shard_sizes)
        pieces, batches = worker_pieces(sizes, epoch=self.epoch, role=role, roles=roles, **self.plan)
        items = self._items(sizes, pieces)
        if self.buffer:
            rng = random.Random(mix(self.plan["seed"], self.epoch, self.plan["rank"], role, SHUFFLE_STREAM))
            items = shuffled(items, self.buffer, rng)
        skip = done_before(self.start, role, roles)
        last: tuple[torch.Tensor, int] | None = None
        for j, (b, size) in enumerate(batches):
            chunk = [next(items) for _ in range(size)]
            if j < skip:  # made before the resumed batch: read, not decoded
                continue
            samples, last = self._decoded(chunk, last)
            yield self._batch(b, samples, [i for i, _ in chunk])

    def _items(self, sizes: list[int], pieces: list[tuple[int, int, int]]) -> Iterator[tuple[int, Any]]:
        """(sample index in the unshuffled data set, raw item) of each piece, counted against the plan."""
        offsets = [sum(sizes[:k]) for k in range(len(sizes))]
        for shard, first, end in pieces:
            got = first
            for item in self.dataset.samples(shard, first, end):
                yield offsets[shard] + got, item
                got += 1
            if got != end:
                raise ZooError(
                    f"shard {shard} gave {got - first} samples where {end - first} were expected: it changed "
                    "since it was counted, or it is damaged"
                )

    def _decoded(
        self, chunk: list[tuple[int, Any]], last: tuple[torch.Tensor, int] | None
    ) -> tuple[list[tuple[torch.Tensor, int]], tuple[torch.Tensor, int] | None]:
        """The batch's samples decoded; a damaged one (reported by the data set) is replaced by the sample
        before it, so the batch keeps its size and every rank its step count."""
        decoded = [self.dataset.decode(item) for _, item in chunk]
        good = [d for d in decoded if d is not None]
        last = good[-1] if good else last
        if last is None:
            raise ZooError(f"none of {len(chunk)} samples of a batch could be read, nor any before them")
        out, previous = [], good[0] if good else last
        for d in decoded:
            previous = d if d is not None else previous
            out.append(previous)
        return out, last

    def _batch(
        self, b: int, samples: list[tuple[torch.Tensor, int]], index: list[int]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.crops is not None:  # the batch's boxes and flips, drawn as the batch transform would
            stored, size, flip, centre = self.crops
            seed = mix(self.plan["seed"], self.epoch, self.plan["rank"], b)
            boxes, flips = batch_draws(seed, len(samples), stored, flip, centre)
            samples = [
                ((cut.flip(-1) if f else cut), label)
                for (image, label), box, f in zip(samples, boxes, flips, strict=True)
                for cut in (resized_crop_one(image, box, size),)
            ]
        x, y = self.collate(samples)
        return x, y, torch.tensor(index, dtype=torch.int64)


def shuffled(items: Iterator[Any], size: int, rng: random.Random) -> Iterator[Any]:
    """``items`` through a shuffle buffer of ``size``: each item out is drawn at random from the buffer and
    replaced by the next in. Written here (a dozen lines) rather than taken from webdataset: the core does
    not depend on that optional package, and the draws must come from the loader's seeded ``rng``."""
    buffer: list[Any] = []
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        k = rng.randrange(size)
        buffer[k], item = item, buffer[k]
        yield item
    rng.shuffle(buffer)
    yield from buffer
