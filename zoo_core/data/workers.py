"""The DataLoader side of a streamed feed: the data sets that wrap a streamed one (or in-memory tensors) for
the workers, and the collations that stack their samples."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from zoo_core.data.batch_buffers import BatchBuffers
from zoo_core.data.ops import Normalize, resized_crop_one


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


class Collate:
    """How a batch of (uint8 C×H×W image, label) samples is stacked where it is made (in a DataLoader
    worker: straight into shared memory, which the main process maps rather than copies, as PyTorch's own
    collation does): N×C×H×W, channels_last when asked (the layout a CPU's model takes: an image decoded
    as H×W×C goes in with one plain copy, where stacking then converting would reorder every byte twice),
    and with ``normalizer`` as normalized float32 (on a CPU device the training process then only trains,
    as torchvision's ToTensor and Normalize in the workers leave it). ``buffers``: the loader's
    ``BatchBuffers``, whose freed buffers a worker reuses (without it, a fresh buffer every batch)."""

    def __init__(
        self,
        channels_last: bool,
        normalizer: Normalize | None = None,
        buffers: BatchBuffers | None = None,
    ) -> None:
        self.channels_last = channels_last
        self.normalizer = normalizer
        self.buffers = buffers or BatchBuffers(0)

    def __call__(self, batch: Sequence[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        images = [image for image, _ in batch]
        n, (c, h, w) = len(images), images[0].shape
        dtype = images[0].dtype if self.normalizer is None else torch.float32
        worker = torch.utils.data.get_worker_info()
        if worker is not None:  # in shared memory, a reused buffer where one is free
            flat = self.buffers.empty(n * c * h * w, dtype, worker.id)
        else:
            flat = torch.empty(n * c * h * w, dtype=dtype)
        strides = (h * w * c, 1, w * c, c) if self.channels_last else (c * h * w, h * w, w, 1)
        out = flat.as_strided((n, c, h, w), strides)
        for k, image in enumerate(images):
            out[k].copy_(image)  # uint8 → float32 here when normalizing: exact
            if self.normalizer is not None:  # while the image is in the cache, not in a pass over the batch
                self.normalizer.in_place(out[k])
        return out, torch.tensor([int(label) for _, label in batch], dtype=torch.int64)


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
