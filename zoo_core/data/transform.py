"""What is done to a batch on its device: the options (``Augment``, one frozen object built once from the
config) and ``BatchTransform``, which applies them a whole batch at a time."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from zoo_core.data.ops import (
    Normalize,
    center_crop,
    flip_where,
    random_crop,
    random_flip,
    random_resized_crop,
)


@dataclass(frozen=True)
class Augment:
    """The batch's augmentations and layout, as ``zoo train`` sets them: ``crop_padding`` pixels of padded
    random crop (``padding_mode`` "constant" or "reflect"), random ``flip`` (``alternate_flip``: airbench's
    derandomised one), ``resized_crop`` (torchvision's RandomResizedCrop), the ``size`` (H, W) the model
    is fed (None: the stored size) and ``channels_last``. Training applies them; evaluation only the
    centre crop to ``size`` and the layout."""

    crop_padding: int = 0
    padding_mode: str = "constant"
    flip: bool = False
    alternate_flip: bool = False
    resized_crop: bool = False
    size: tuple[int, int] | None = None
    channels_last: bool = False


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
        augment: Augment | None = None,
        **keywords: object,
    ) -> None:
        augment = dataclasses.replace(augment or Augment(), **keywords)  # type: ignore[arg-type]
        self.normalizer = Normalize(mean, std, device)
        self.normalize = True  # False where the batches arrive normalized (stacked so by CPU workers)
        self.padding_mode = augment.padding_mode
        self.alternate_flip = augment.alternate_flip and augment.flip and train
        self.crop_padding = augment.crop_padding if train else 0
        self.flip = augment.flip and train
        self.channels_last = augment.channels_last
        self.size = None if augment.size is None else (int(augment.size[0]), int(augment.size[1]))
        self.resized_crop = augment.resized_crop and train

    @property
    def random(self) -> bool:
        return self.crop_padding > 0 or self.resized_crop or self.draws_flips

    @property
    def draws_flips(self) -> bool:
        """Whether the flips are drawn at random (alternating ones go by index)."""
        return self.flip and not self.alternate_flip

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
        return self.normalizer(x) if self.normalize else x

    def first(self, images: torch.Tensor) -> torch.Tensor:
        """Images for a data-dependent init: the evaluation view (centre crop), normalized, unaugmented."""
        if self.size is not None and (images.shape[-2], images.shape[-1]) != self.size:
            images = center_crop(images, self.size)
        return self.normalizer(images)
