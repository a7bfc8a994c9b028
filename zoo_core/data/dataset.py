"""The in-memory data set every small-data builder returns: uint8 images and int64 labels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from zoo_core.errors import BadInputError


@dataclass
class InMemoryDataset:
    """Images (uint8 N×C×H×W) and labels (int64 N) that fit in memory; the trainer moves them to the device
    whole. ``mean``/``std`` are per-channel in [0, 1] (None: compute them, see ``zoo_core.data.stats``).
    ``recipe``: training defaults for these very images, over the registered recipe (the Trainer asks the
    training split). ``crop_pct`` < 1: the images are stored larger than the model's input, which is their
    centre ``crop_pct`` per side (``input_size``) in evaluation, a random resized crop in training where the
    recipe says so (timm's crop_pct: 224×224 out of 256×256 at 0.875)."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    class_to_idx: dict[str, int] | None = None
    recipe: dict[str, Any] | None = None  # refines the registered recipe for these images (e.g. their count)
    crop_pct: float = 1.0

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            shape = tuple(self.images.shape)
            raise ValueError(f"images must be uint8 N×C×H×W, got {self.images.dtype} {shape}")
        if self.labels.dtype != torch.int64 or self.labels.shape != self.images.shape[:1]:
            raise ValueError(
                f"labels must be int64 of shape ({len(self.images)},), "
                f"got {self.labels.dtype} {tuple(self.labels.shape)}"
            )
        if not 0 < self.crop_pct <= 1:
            raise ValueError(f"crop_pct must be in (0, 1], not {self.crop_pct}")
        if self.class_to_idx is None:
            self.class_to_idx = {name: i for i, name in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_size(self) -> tuple[int, int, int]:
        """(C, H, W) the model is fed: the stored size, or its centre ``crop_pct``."""
        c, h, w = self.images.shape[1:]
        return (c, *cropped_size((h, w), self.crop_pct))


def cropped_size(stored: Sequence[int], crop_pct: float) -> tuple[int, int]:
    """The centre ``crop_pct`` of an image of ``stored`` (H, W), per side, rounded."""
    return (round(stored[0] * crop_pct), round(stored[1] * crop_pct))


def stored_size(size: Sequence[int], crop_pct: float) -> tuple[int, int]:
    """The size (H, W) to store images at so that their centre ``crop_pct`` is ``size``: the inverse of
    ``cropped_size`` (exact for any crop_pct < 1: the rounding error shrinks when multiplied back)."""
    return (round(size[0] / crop_pct), round(size[1] / crop_pct))


def check_split(split: str, splits: Sequence[str], dataset: str) -> str:
    """``split`` if it is one of ``splits``, else BadInputError listing the valid ones."""
    if split not in splits:
        raise BadInputError(f"Unknown split {split!r} for {dataset}: valid splits are {', '.join(splits)}")
    return split
