"""Mixup (Zhang et al. 2018): each image blended with a random partner, the labels in the same proportion."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from zoo_plugins.augmentations._batch import per_image
from zoo_plugins.augmentations._checks import check_num_classes, check_probability, require
from zoo_plugins.augmentations._random import apply_mask, beta, partners
from zoo_plugins.augmentations._targets import blend_targets


def mixup_batch(
    x: torch.Tensor, y: torch.Tensor, lam: torch.Tensor, perm: torch.Tensor, num_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``x'ᵢ = λᵢ·xᵢ + (1−λᵢ)·x_perm[i]`` and the same blend of the targets, for given λ (N,) and partners."""
    mixed = torch.lerp(x[perm], x, per_image(lam, x).to(x.dtype))  # one pass; exact at λ = 1
    sources = torch.stack([torch.arange(x.shape[0], device=x.device), perm])
    return mixed, blend_targets(y, sources, torch.stack([lam, 1.0 - lam]), num_classes)


@dataclass(frozen=True, kw_only=True)
class MixUp:
    """Mixup: blend each image with a random partner, λ ~ Beta(α, α) per image; soft targets."""

    num_classes: int
    alpha: float = 1.0
    p: float = 1.0

    def __post_init__(self) -> None:
        check_num_classes("mixup", self.num_classes)
        require(self.alpha > 0, "mixup", "alpha", "> 0", self.alpha)
        check_probability("mixup", self.p)

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = x.shape[0]
        lam = beta(self.alpha, n, x.device, generator)
        # An image left alone is an image mixed with weight 1 on itself: exact, and the batch stays one op.
        lam = torch.where(apply_mask(n, self.p, x.device, generator), lam, 1.0)
        return mixup_batch(x, y, lam, partners(n, x.device, generator), self.num_classes)
