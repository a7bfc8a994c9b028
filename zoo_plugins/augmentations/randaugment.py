"""RandAugment (Cubuk et al. 2020) per image on the device: n operations, each image drawing its own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch

from zoo_plugins.augmentations._checks import check_num_classes, check_probability, require
from zoo_plugins.augmentations._policy import apply_policy, check_normalization, magnitudes
from zoo_plugins.augmentations._random import apply_mask
from zoo_plugins.augmentations.ops import OPS

# torchvision's RandAugment set: every operation but invert, in its order
RAND_OPS = tuple(name for name in OPS if name != "invert")


@dataclass(frozen=True, kw_only=True)
class RandAugment:
    """RandAugment: n operations per image, each image drawing its own ops and signs, magnitude m ± mstd.

    torchvision's operations and magnitude bins (``bins`` = 31: m = 9 turns by 9°, shears by 0.09); timm's
    ``rand-m9-mstd0.5`` is m on a 0–10 scale, here ``bins=11,m=9,mstd=0.5``. With ``mstd`` > 0 each
    operation of each image draws its bin from N(m, mstd²), clipped to [0, bins − 1], as timm does.
    """

    ops: ClassVar[tuple[str, ...]] = RAND_OPS  # the operations, in the order ``draw``'s op indices
    num_classes: int
    n: int = 2
    m: float = 9.0
    mstd: float = 0.0
    bins: int = 31
    p: float = 1.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        check_num_classes("randaugment", self.num_classes)
        require(self.n >= 0, "randaugment", "n", "a non-negative integer", self.n)
        require(self.bins >= 2, "randaugment", "bins", "at least 2", self.bins)
        require(
            0 <= self.m <= self.bins - 1, "randaugment", "m", f"in [0, bins − 1 = {self.bins - 1}]", self.m
        )
        require(self.mstd >= 0, "randaugment", "mstd", ">= 0", self.mstd)
        check_probability("randaugment", self.p)
        check_normalization("randaugment", self.mean, self.std)

    def draw(
        self, n: int, size: tuple[int, int], device: torch.device, generator: torch.Generator | None
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The (op, magnitude) of every image for each of the ``n`` steps; op −1 where p left it alone."""
        applied = apply_mask(n, self.p, device, generator)
        steps = []
        for _ in range(self.n):
            op = torch.randint(len(RAND_OPS), (n,), device=device, generator=generator)
            noise = torch.randn(n, device=device, generator=generator)
            position = (self.m + self.mstd * noise).clamp_(0, self.bins - 1)
            negate = torch.rand(n, device=device, generator=generator) <= 0.5
            magnitude = magnitudes("standard", RAND_OPS, op, position, negate, self.bins, size)
            steps.append((torch.where(applied, op, -1), magnitude))
        return steps

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        steps = self.draw(x.shape[0], (x.shape[-2], x.shape[-1]), x.device, generator)
        return apply_policy(x, steps, self.ops, self.mean, self.std), y
