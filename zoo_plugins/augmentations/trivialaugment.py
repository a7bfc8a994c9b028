"""TrivialAugment Wide (Müller & Hutter 2021) per image on the device: one op, one random magnitude."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from zoo_plugins.augmentations._checks import check_num_classes, check_probability, require
from zoo_plugins.augmentations._policy import apply_policy, check_normalization, magnitudes
from zoo_plugins.augmentations._random import apply_mask
from zoo_plugins.augmentations.randaugment import RAND_OPS


@dataclass(frozen=True, kw_only=True)
class TrivialAugment:
    """TrivialAugment Wide: one operation per image, its magnitude drawn uniformly from `bins` wide bins.

    torchvision's ``TrivialAugmentWide``: the RandAugment operations with the wide ranges (shear 0.99,
    translate 32 pixels, rotate 135°, enhancements ±0.99, posterize down to 2 bits).
    """

    ops: ClassVar[tuple[str, ...]] = RAND_OPS  # the operations, in the order ``draw``'s op indices
    num_classes: int
    bins: int = 31
    p: float = 1.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        check_num_classes("trivialaugment", self.num_classes)
        require(self.bins >= 2, "trivialaugment", "bins", "at least 2", self.bins)
        check_probability("trivialaugment", self.p)
        check_normalization("trivialaugment", self.mean, self.std)

    def draw(
        self, n: int, size: tuple[int, int], device: torch.device, generator: torch.Generator | None
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The (op, magnitude) of every image: one step; op −1 where p left the image alone."""
        applied = apply_mask(n, self.p, device, generator)
        op = torch.randint(len(RAND_OPS), (n,), device=device, generator=generator)
        position = torch.randint(self.bins, (n,), device=device, generator=generator).float()
        negate = torch.rand(n, device=device, generator=generator) <= 0.5
        magnitude = magnitudes("wide", RAND_OPS, op, position, negate, self.bins, size)
        return [(torch.where(applied, op, -1), magnitude)]

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        steps = self.draw(x.shape[0], (x.shape[-2], x.shape[-1]), x.device, generator)
        return apply_policy(x, steps, self.ops, self.mean, self.std), y
