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
    training split)."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    class_to_idx: dict[str, int] | None = None
    recipe: dict[str, Any] | None = None  # refines the registered recipe for these images (e.g. their count)

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            shape = tuple(self.images.shape)
            raise ValueError(f"images must be uint8 N×C×H×W, got {self.images.dtype} {shape}")
        if self.labels.dtype != torch.int64 or self.labels.shape != self.images.shape[:1]:
            raise ValueError(
                f"labels must be int64 of shape ({len(self.images)},), "
                f"got {self.labels.dtype} {tuple(self.labels.shape)}"
            )
        if self.class_to_idx is None:
            self.class_to_idx = {name: i for i, name in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_size(self) -> tuple[int, int, int]:
        c, h, w = self.images.shape[1:]
        return (c, h, w)


def check_split(split: str, splits: Sequence[str], dataset: str) -> str:
    """``split`` if it is one of ``splits``, else BadInputError listing the valid ones."""
    if split not in splits:
        raise BadInputError(f"Unknown split {split!r} for {dataset}: valid splits are {', '.join(splits)}")
    return split
