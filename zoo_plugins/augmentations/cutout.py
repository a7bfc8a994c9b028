"""Cutout (DeVries & Taylor 2017): one square per image set to zero, its centre anywhere."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from zoo_plugins.augmentations._boxes import box_mask, sample_boxes
from zoo_plugins.augmentations._checks import check_num_classes, check_probability, require
from zoo_plugins.augmentations._random import apply_mask


@dataclass(frozen=True, kw_only=True)
class Cutout:
    """Cutout: zero one L×L square per image (centre anywhere, clipped at the border); labels unchanged.

    The batch is normalized, so zero is the data set's mean colour, as in the paper.
    """

    num_classes: int
    size: int | None = None
    p: float = 1.0

    def __post_init__(self) -> None:
        check_num_classes("cutout", self.num_classes)
        require(
            self.size is None or self.size >= 1, "cutout", "size", "a positive number of pixels", self.size
        )
        check_probability("cutout", self.p)

    def side(self, h: int, w: int) -> int:
        """The square's side: ``size``, or half the shorter image side (16 at 32×32, the paper's CIFAR L)."""
        return self.size if self.size is not None else max(1, min(h, w) // 2)

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
        sides = self.side(h, w) * apply_mask(n, self.p, x.device, generator).long()
        mask = box_mask(*sample_boxes(sides, sides, (h, w), generator), (h, w))
        return x.masked_fill(mask, 0.0), y
