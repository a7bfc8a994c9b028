"""Batches on the training device: shuffled by a seeded generator, sharded by rank, augmented and
normalized a whole batch at a time.

In-memory data sets (uint8 N×C×H×W) move to the device once (``DeviceLoader``); larger ones stream through
DataLoader workers with pinned memory and then take the same on-device steps (``StreamLoader``).

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

import abc
import hashlib
import math
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch

from zoo_core import contracts
from zoo_core.data import ops
from zoo_core.data.ops import (
    affine_for,
    center_crop,
    flip_where,
    random_crop,
    random_flip,
    random_resized_crop,
    random_window,
    resized_crop_boxes,
    resized_crop_one,
)
from zoo_core.data.stats import channel_stats
from zoo_core.errors import ZooError

Batch = tuple[torch.Tensor, torch.Tensor]
FLIP_STREAM = 0x6F6C6966  # separates the seed of the first-epoch flips from every other stream


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


class BatchTransform:
    """uint8 batch → (train only) random resized crop or random crop with padding, random flip →
    normalized float32, optionally channels_last; all on the batch's device, one kernel sequence per batch.

    ``size`` (H, W) is what the model is fed. Stored images larger than it are cut to it: a random resized
    crop in training when ``resized_crop`` (torchvision's RandomResizedCrop, each image its own box), else
    the centre crop (evaluation always: e.g. the centre 224×224 of images stored at 256×256, crop_pct
    0.875). ``resized_crop`` with images of ``size`` itself crops and resizes them back to it.
    """

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        device: torch.device,
        *,
        train: bool,
        crop_padding: int = 0,
        flip: bool = False,
        channels_last: bool = False,
        alternate_flip: bool = False,
        padding_mode: str = "constant",
        size: tuple[int, int] | None = None,
        resized_crop: bool = False,
    ) -> None:
        self.scale, self.shift = affine_for(mean, std, device)
        self._planes_key: tuple[int, ...] | None = None  # the size _planes last expanded scale/shift to
        self._planes_cache: tuple[torch.Tensor, torch.Tensor] = (self.scale, self.shift)
        self.padding_mode = padding_mode
        self.alternate_flip = alternate_flip and flip and train
        self.crop_padding = crop_padding if train else 0
        self.flip = flip and train
        self.channels_last = channels_last
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.resized_crop = resized_crop and train

    @property
    def random(self) -> bool:
        return self.crop_padding > 0 or self.resized_crop or (self.flip and not self.alternate_flip)

    def cuts(self, stored: Sequence[int]) -> bool:
        """Whether images stored at ``stored`` (H, W) are cut to ``size`` before anything else."""
        return self.resized_crop or (self.size is not None and tuple(stored) != self.size)

    def fit(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The batch at ``size``: random resized crops (training, when asked), else the centre crop."""
        size = self.size or (x.shape[-2], x.shape[-1])
        if self.resized_crop:
            return random_resized_crop(x, size, generator)
        if (x.shape[-2], x.shape[-1]) != size:
            return center_crop(x, size)
        return x

    def __call__(
        self,
        x: torch.Tensor,
        generator: torch.Generator | None = None,
        flips: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = self.fit(x, generator)
        if self.crop_padding:
            x = random_crop(x, self.crop_padding, generator, padding_mode=self.padding_mode)
        return self.finish(x, generator, flips)

    def finish(
        self,
        x: torch.Tensor,
        generator: torch.Generator | None = None,
        flips: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """After the crop: flip (at random, or where ``flips`` says), memory format, normalization."""
        if flips is not None:
            x = flip_where(x, flips)
        elif self.flip:
            x = random_flip(x, generator)
        if self.channels_last:  # on the uint8 batch: a quarter of the bytes, and the float result inherits it
            x = x.contiguous(memory_format=torch.channels_last)
            if x.device.type == "cpu":
                scale, shift = self._planes(x)
                return torch.mul(x, scale).add_(shift)
        return torch.mul(x, self.scale).add_(self.shift)  # uint8 × float32 promotes inside the kernel

    def _planes(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """scale and shift as whole channels_last images (1, C, H, W), made once per size: per-channel
        values broadcast over a channels_last batch vary along its innermost dimension (C, 3 wide), which
        a CPU's vector kernels run several times slower (measured in benchmarks/results/
        imagefolder-stream-cpu.md); the same values, the same float32 products and sums."""
        key = tuple(x.shape[-2:])
        if self._planes_key != key:
            scale, shift = (
                t.expand(1, -1, *key).contiguous(memory_format=torch.channels_last)
                for t in (self.scale, self.shift)
            )
            self._planes_key, self._planes_cache = key, (scale, shift)
        return self._planes_cache

    def first(self, images: torch.Tensor) -> torch.Tensor:
        """Images for a data-dependent init: the evaluation view (centre crop), normalized, unaugmented."""
        if self.size is not None and (images.shape[-2], images.shape[-1]) != self.size:
            images = center_crop(images, self.size)
        return torch.mul(images, self.scale).add_(self.shift)


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
        shuffle: bool | None,
        crop_padding: int,
        flip: bool,
        channels_last: bool,
        drop_last: bool | None,
        seed: int,
        rank: int,
        world_size: int,
        alternate_flip: bool = False,
        padding_mode: str = "constant",
        size: tuple[int, int] | None = None,
        resized_crop: bool = False,
    ) -> None:
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
        self.shuffle = train if shuffle is None else shuffle
        self.drop_last = train if drop_last is None else drop_last
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.mean = tuple(float(m) for m in mean)  # the normalization, as checkpoints record it
        self.std = tuple(float(v) for v in std)
        self.epoch = 0
        self._generator = torch.Generator(device=self.device)
        self.transform = BatchTransform(
            mean,
            std,
            self.device,
            train=train,
            crop_padding=crop_padding,
            flip=flip,
            channels_last=channels_last,
            alternate_flip=alternate_flip,
            padding_mode=padding_mode,
            size=size,
            resized_crop=resized_crop,
        )
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

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        device: torch.device | str,
        mean: Sequence[float],
        std: Sequence[float],
        train: bool,
        shuffle: bool | None = None,
        crop_padding: int = 0,
        flip: bool = False,
        channels_last: bool = False,
        drop_last: bool | None = None,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        alternate_flip: bool = False,
        padding_mode: str = "constant",
        size: tuple[int, int] | None = None,
        resized_crop: bool = False,
    ) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be uint8 N×C×H×W, got {images.dtype} {tuple(images.shape)}")
        if labels.shape != images.shape[:1]:
            raise ValueError(f"{len(images)} images but labels of shape {tuple(labels.shape)}")
        super().__init__(
            len(images),
            batch_size=batch_size,
            device=device,
            mean=mean,
            std=std,
            train=train,
            shuffle=shuffle,
            crop_padding=crop_padding,
            flip=flip,
            channels_last=channels_last,
            drop_last=drop_last,
            seed=seed,
            rank=rank,
            world_size=world_size,
            alternate_flip=alternate_flip,
            padding_mode=padding_mode,
            size=size,
            resized_crop=resized_crop,
        )
        self.images = images.to(self.device)
        self.labels = labels.to(self.device, torch.int64)
        self._size = (images.shape[2], images.shape[3])
        # padded once here, so each batch's crop windows are gathered straight from the data set (not when
        # the images are first cut to the model's size: the padding then follows the cut)
        self._pad = 0 if self.transform.cuts(self._size) else self.transform.crop_padding
        if self._pad:
            self.images = ops.pad(self.images, self._pad, padding_mode)

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


class _ShardSampler(torch.utils.data.Sampler[int]):
    """One rank's indices for the epoch in ``epoch``, from position ``start`` (both set by the loader).

    With ``crops`` = (stored (H, W), batch size, flip) it yields (index, box, flip) instead: each batch's
    random resized crop boxes and flips drawn as ``BatchTransform`` draws them for that batch, from a
    generator seeded with ``mix(seed, epoch, rank, b)``, for the workers to apply (``_WorkerAugment``).
    It holds plain values, not the loader, so no reference cycle keeps DataLoader workers alive."""

    def __init__(
        self, n: int, num_samples: int, crops: tuple[tuple[int, int], int, bool] | None = None, **order: Any
    ) -> None:
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
        (height, width), batch_size, flip = self.crops
        generator = torch.Generator()
        first = self.start // batch_size
        for b in range(first, first + math.ceil(len(chosen) / batch_size)):
            batch = chosen[(b - first) * batch_size : (b - first + 1) * batch_size]
            generator.manual_seed(mix(self.order["seed"], self.epoch, self.order["rank"], b))
            boxes = resized_crop_boxes(len(batch), height, width, generator).tolist()
            flips = (
                (torch.rand(len(batch), generator=generator) < 0.5).tolist() if flip else [False] * len(batch)
            )
            yield from zip(batch, map(tuple, boxes), flips, strict=True)

    def __len__(self) -> int:
        return self.num_samples - self.start


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
        batch_size: int,
        device: torch.device | str,
        mean: Sequence[float],
        std: Sequence[float],
        train: bool,
        shuffle: bool | None = None,
        crop_padding: int = 0,
        flip: bool = False,
        channels_last: bool = False,
        drop_last: bool | None = None,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        alternate_flip: bool = False,
        padding_mode: str = "constant",
        size: tuple[int, int] | None = None,
        resized_crop: bool = False,
        num_workers: int | None = None,
        augment_in_workers: bool | None = None,
        decode_on_device: bool | None = None,
    ) -> None:
        super().__init__(
            len(dataset),
            batch_size=batch_size,
            device=device,
            mean=mean,
            std=std,
            train=train,
            shuffle=shuffle,
            crop_padding=crop_padding,
            flip=flip,
            channels_last=channels_last,
            drop_last=drop_last,
            seed=seed,
            rank=rank,
            world_size=world_size,
            alternate_flip=alternate_flip,
            padding_mode=padding_mode,
            size=size,
            resized_crop=resized_crop,
        )
        self.dataset = dataset
        workers = min(8, os.cpu_count() or 1) if num_workers is None else num_workers
        if decode_on_device is None:  # the data set's choice (imagefolder's --decode)
            decode_on_device = getattr(dataset, "decode", "workers") == "device"
        self.decode_on_device = bool(decode_on_device)
        if self.decode_on_device:  # the workers read files, the device decodes them: it cuts the crops too
            augment_in_workers = False
            dataset = _Encoded(dataset)
        if augment_in_workers is None:  # on a GPU the batched crop and flip are a few kernels; on a CPU they
            # would hold the main process, on the cores the decoding workers need
            augment_in_workers = self.device.type == "cpu"
        # the random resized crop, and with it the random flip (alternating flips go by image index), when
        # nothing else draws from the batch's generator between them (a padded crop would)
        crop = self.transform.resized_crop and not self.transform.crop_padding
        flip = self.transform.flip and not self.transform.alternate_flip
        self.augment_in_workers = bool(augment_in_workers and crop and workers > 0)
        crops = None
        if self.augment_in_workers:
            stored = tuple(int(v) for v in dataset[0][0].shape[-2:])
            crops = (stored, batch_size, flip)
            dataset = _WorkerAugment(dataset, self.transform.size or stored)
            self.transform.resized_crop = False  # the batches arrive cut to size
            self.transform.flip = self.transform.flip and not flip  # and flipped
        collate = None
        if self.decode_on_device:
            collate = _collate_encoded
        elif self.transform.channels_last and self.device.type == "cpu":
            collate = _collate_channels_last
        self._sampler = _ShardSampler(
            self.n,
            self.num_samples,
            crops=crops,
            seed=seed,
            shuffle=self.shuffle,
            drop_last=self.drop_last,
            rank=rank,
            world_size=world_size,
            pad=self.pad,
        )
        self._loader = torch.utils.data.DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=self._sampler,
            drop_last=self.drop_last,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=workers > 0,
            collate_fn=collate,
        )

    def first_images(self, n: int) -> torch.Tensor:
        """The data set's first ``n`` images, normalized, unaugmented (e.g. for a data-dependent init)."""
        images = torch.stack([self.dataset[i][0] for i in range(min(n, self.n))]).to(self.device)
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


def make_loader(
    dataset: Any,
    *,
    batch_size: int,
    device: torch.device | str,
    train: bool,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    num_workers: int | None = None,
    **options: Any,
) -> DeviceLoader | StreamLoader:
    """A ``DeviceLoader`` for an in-memory data set (``images``/``labels`` tensors), else a ``StreamLoader``.

    ``mean``/``std`` default to the data set's own, else they are computed from its images (all of them in
    memory; up to 2,000 evenly spaced samples of a streamed one). ``options`` are the loaders' keywords
    (``shuffle``, ``crop_padding``, ``padding_mode``, ``flip``, ``alternate_flip``, ``channels_last``,
    ``drop_last``, ``seed``, ``rank``, ``world_size``, ``size``, ``resized_crop``). ``size`` defaults to the
    data set's ``input_size`` (H, W): images stored larger are cut to it (see ``BatchTransform``).
    """
    if options.get("size") is None and getattr(dataset, "input_size", None) is not None:
        options["size"] = tuple(int(n) for n in dataset.input_size[1:])
    mean = mean if mean is not None else getattr(dataset, "mean", None)
    std = std if std is not None else getattr(dataset, "std", None)
    in_memory = contracts.is_in_memory(dataset)
    if mean is None or std is None:
        if in_memory:
            mean, std = channel_stats(dataset.images)
        else:
            step = max(1, len(dataset) // 2000)
            sample = torch.stack([dataset[i][0] for i in range(0, len(dataset), step)])
            mean, std = channel_stats(sample)
    common = dict(batch_size=batch_size, device=device, mean=mean, std=std, train=train, **options)
    if in_memory and not _fits_on(torch.device(device), dataset.images):
        # held in RAM, too large for the GPU: batches are copied from (pinned) host memory instead
        return StreamLoader(_TensorPairs(dataset.images, dataset.labels), num_workers=0, **common)
    if in_memory and _crops_in_workers(torch.device(device), train, options, num_workers):
        # a CPU cuts random resized crops image by image in DataLoader workers, as for a streamed set: the
        # same kernel, so both give the same batches, and the main process's cores stay with the model
        return StreamLoader(_TensorPairs(dataset.images, dataset.labels), num_workers=num_workers, **common)
    if in_memory:
        return DeviceLoader(dataset.images, dataset.labels, **common)
    return StreamLoader(dataset, num_workers=num_workers, **common)


def _crops_in_workers(
    device: torch.device, train: bool, options: dict[str, Any], workers: int | None
) -> bool:
    """Whether training batches would have their random resized crops cut in DataLoader workers: on a CPU,
    with workers, when no padded crop draws between the crop and the flip (``StreamLoader``'s rule)."""
    wanted = options.get("augment_in_workers")
    on_cpu = device.type == "cpu" if wanted is None else bool(wanted)
    return (
        train
        and on_cpu
        and bool(options.get("resized_crop"))
        and not options.get("crop_padding")
        and (workers is None or workers > 0)
    )


def _fits_on(device: torch.device, images: torch.Tensor) -> bool:
    """Whether an in-memory set may move to ``device`` whole: always on the CPU (it is there already);
    on CUDA when the memory plan says so against the free GPU memory, said in one line when it does not."""
    if device.type != "cuda":
        return True
    from zoo_core.data.memory import free_gpu_memory, plan_data_mode

    plan = plan_data_mode(
        "auto",
        images=len(images),
        shape=tuple(images.shape[1:]),
        free=free_gpu_memory(device),
        where=f"free on {device}",
        copies=1,
        what="data set",
    )
    if not plan.fits:
        print(plan.line.replace("from disk", "from host memory"), file=sys.stderr, flush=True)
    return plan.fits


class _TensorPairs(torch.utils.data.Dataset):
    """(image, label) pairs of in-memory tensors, for a StreamLoader."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])


class _WorkerAugment(torch.utils.data.Dataset):
    """A streamed data set whose samples are cut and flipped in the DataLoader workers: indices come as
    (index, box, flip) from ``_ShardSampler``, and each image is its box of the stored image resized to
    ``size`` by the one rule in its one-image form (``ops.resized_crop_one``), then mirrored where
    ``flip`` says."""

    def __init__(self, dataset: torch.utils.data.Dataset, size: tuple[int, int]) -> None:
        self.dataset = dataset
        self.size = (int(size[0]), int(size[1]))

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, tuple[int, ...], bool]) -> tuple[torch.Tensor, int]:
        index, box, flip = item
        image, label = self.dataset[index]
        image = resized_crop_one(image, box, self.size)
        return (image.flip(-1) if flip else image), label


def _collate_channels_last(batch: Sequence[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """A uint8 batch stacked straight into channels_last (the layout the CPU's model takes), in shared
    memory inside a worker as PyTorch's own collation does: an image decoded as H×W×C goes in with one
    plain copy, where stacking to N×C×H×W and converting later would reorder every byte twice."""
    images = [image for image, _ in batch]
    n, (c, h, w) = len(images), images[0].shape
    first = images[0]
    if torch.utils.data.get_worker_info() is not None:  # the main process maps it rather than copies it
        # (the storage call torch.utils.data's default_collate makes for the same purpose)
        flat = first.new(first._typed_storage()._new_shared(n * c * h * w, device=first.device))
    else:
        flat = torch.empty(n * c * h * w, dtype=first.dtype)
    out = flat.as_strided((n, c, h, w), (h * w * c, 1, w * c, c))
    for k, image in enumerate(images):
        out[k].copy_(image)
    return out, torch.tensor([label for _, label in batch], dtype=torch.int64)


class _Encoded(torch.utils.data.Dataset):
    """A streamed data set's ``encoded`` samples (files read, not decoded), for ``decode_batch`` on the
    device."""

    def __init__(self, dataset: torch.utils.data.Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        return self.dataset.encoded(index)


def _collate_encoded(batch: Sequence[tuple[Any, int]]) -> tuple[list[Any], torch.Tensor]:
    """Encoded samples differ in length: they stay a list; the labels become one int64 tensor."""
    return [item for item, _ in batch], torch.tensor([label for _, label in batch], dtype=torch.int64)
