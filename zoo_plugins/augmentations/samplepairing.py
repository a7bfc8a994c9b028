"""SamplePairing (Inoue 2018): each image averaged with a random partner, keeping its own label."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from zoo_plugins.augmentations._batch import where_applied
from zoo_plugins.augmentations._checks import check_num_classes, check_probability
from zoo_plugins.augmentations._random import apply_mask, partners


@dataclass(frozen=True, kw_only=True)
class SamplePairing:
    """SamplePairing: average each image with a random partner; the first image's label is kept."""

    num_classes: int
    p: float = 1.0

    def __post_init__(self) -> None:
        check_num_classes("samplepairing", self.num_classes)
        check_probability("samplepairing", self.p)

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = x.shape[0]
        apply = apply_mask(n, self.p, x.device, generator)
        paired = (x + x[partners(n, x.device, generator)]) * 0.5
        return where_applied(apply, paired, x), y
