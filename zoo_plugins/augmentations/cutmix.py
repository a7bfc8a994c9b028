"""CutMix (Yun et al. 2019): a box cut from a random partner pasted into each image, labels by pasted area."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from zoo_plugins.augmentations._boxes import box_area, box_mask, sample_boxes
from zoo_plugins.augmentations._checks import check_num_classes, check_probability, require
from zoo_plugins.augmentations._random import apply_mask, beta, partners
from zoo_plugins.augmentations._targets import blend_targets


def cutmix_batch(
    x: torch.Tensor,
    y: torch.Tensor,
    boxes: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
    perm: torch.Tensor,
    num_classes: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste ``x[perm[i]]`` inside box ``i`` (top, left, bottom, right; each (N,)) into ``x[i]``.

    The label weight of the partner is the area actually pasted, so λ is exact after clipping at the border.
    """
    size = (x.shape[-2], x.shape[-1])
    mixed = torch.where(box_mask(*boxes, size), x[perm], x)
    pasted = box_area(*boxes).float() / (size[0] * size[1])
    sources = torch.stack([torch.arange(x.shape[0], device=x.device), perm])
    return mixed, blend_targets(y, sources, torch.stack([1.0 - pasted, pasted]), num_classes)


@dataclass(frozen=True, kw_only=True)
class CutMix:
    """CutMix: paste a box from a random partner into each image, area 1−λ, λ ~ Beta(α, α); soft targets."""

    num_classes: int
    alpha: float = 1.0
    p: float = 1.0

    def __post_init__(self) -> None:
        check_num_classes("cutmix", self.num_classes)
        require(self.alpha > 0, "cutmix", "alpha", "> 0", self.alpha)
        check_probability("cutmix", self.p)

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
        lam = beta(self.alpha, n, x.device, generator)
        # Side ratio √(1−λ) gives a box of area (1−λ)·H·W before clipping, as in the paper and timm.
        ratio = torch.sqrt(1.0 - lam) * apply_mask(n, self.p, x.device, generator)
        boxes = sample_boxes((ratio * h).long(), (ratio * w).long(), (h, w), generator)
        return cutmix_batch(x, y, boxes, partners(n, x.device, generator), self.num_classes)
