"""A small GoogLeNet-style network for 32×32 images: a 3×3 stem and six Inception modules in three
stages (32×32, 16×16, 8×8) at roughly half GoogLeNet's widths, with the 5×5 branch factorised into two
3×3 convs; about a quarter of GoogLeNet's parameters and a fifth of its multiply-adds."""

from __future__ import annotations

import torch
from torch import nn

from zoo_plugins.models.layers import Inception, cifar_stem, classifier_head

# (1×1, 3×3 reduce, 3×3, double-3×3 reduce, double-3×3, pool proj) per module, two modules per stage
STAGES: list[list[tuple[int, int, int, int, int, int]]] = [
    [(32, 48, 64, 12, 16, 16), (64, 64, 96, 16, 32, 32)],  # 32×32: 128, 224 channels out
    [(96, 64, 128, 16, 32, 32), (96, 96, 160, 24, 48, 48)],  # 16×16: 288, 352
    [(128, 112, 192, 32, 64, 64), (160, 128, 224, 32, 64, 64)],  # 8×8: 448, 512
]


class SmallInception(nn.Module):
    def __init__(self, *, num_classes: int, in_chans: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [cifar_stem(in_chans, 64)]
        channels = 64
        for i, stage in enumerate(STAGES):
            if i > 0:
                layers.append(nn.MaxPool2d(3, 2, 1))
            for spec in stage:
                module = Inception(channels, *spec, double_3x3=True)
                layers.append(module)
                channels = module.out_channels
        self.features = nn.Sequential(*layers)
        self.head = classifier_head(channels, num_classes, dropout=0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def inception(*, num_classes: int = 10, in_chans: int = 3) -> nn.Module:
    """Small Inception network for 32×32 images (six Inception modules)."""
    return SmallInception(num_classes=num_classes, in_chans=in_chans)
