"""GoogLeNet (Szegedy et al. 2015), CIFAR variant: the paper's nine Inception modules (3a–5b, table 1)
with their channel widths, the 5×5 branches as published, but the ImageNet stem (7×7 stride 2, max-pool,
3×3, max-pool) replaced by one 3×3 stride-1 conv to 192 channels and no auxiliary classifiers, so the
modules see 32×32, 16×16 and 8×8 maps."""

from __future__ import annotations

import torch
from torch import nn

from zoo_plugins.models.layers import Inception, cifar_stem, classifier_head

# (1×1, 3×3 reduce, 3×3, 5×5 reduce, 5×5, pool proj) per module; "M" a 3×3 stride-2 max-pool
MODULES: list[tuple[int, int, int, int, int, int] | str] = [
    (64, 96, 128, 16, 32, 32),  # 3a
    (128, 128, 192, 32, 96, 64),  # 3b
    "M",
    (192, 96, 208, 16, 48, 64),  # 4a
    (160, 112, 224, 24, 64, 64),  # 4b
    (128, 128, 256, 24, 64, 64),  # 4c
    (112, 144, 288, 32, 64, 64),  # 4d
    (256, 160, 320, 32, 128, 128),  # 4e
    "M",
    (256, 160, 320, 32, 128, 128),  # 5a
    (384, 192, 384, 48, 128, 128),  # 5b
]


class GoogLeNet(nn.Module):
    def __init__(self, *, num_classes: int, in_chans: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [cifar_stem(in_chans, 192)]
        channels = 192
        for spec in MODULES:
            if spec == "M":
                layers.append(nn.MaxPool2d(3, 2, 1))
            else:
                module = Inception(channels, *spec)
                layers.append(module)
                channels = module.out_channels
        self.features = nn.Sequential(*layers)
        self.head = classifier_head(channels, num_classes, dropout=0.4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def googlenet(*, num_classes: int = 10, in_chans: int = 3) -> nn.Module:
    """GoogLeNet, CIFAR variant (3×3 stem, nine Inception modules)."""
    return GoogLeNet(num_classes=num_classes, in_chans=in_chans)
