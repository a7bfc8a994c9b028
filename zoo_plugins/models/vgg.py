"""VGG with BatchNorm (Simonyan & Zisserman 2015), CIFAR variant: the paper's 3×3 conv stacks and five
2×2 max-pools, then global average pooling and one linear layer 512 → num_classes instead of the
ImageNet head's three 4096-wide layers."""

from __future__ import annotations

import torch
from torch import nn

from zoo_plugins.models.layers import ConvBNAct, classifier_head

# convs per stage in configurations A, B, D and E of the paper's table 1; each stage is a stack of 3×3
# convs of the stage's width followed by a 2×2 max-pool
WIDTHS = (64, 128, 256, 512, 512)
DEPTHS: dict[int, tuple[int, ...]] = {
    11: (1, 1, 2, 2, 2),
    13: (2, 2, 2, 2, 2),
    16: (2, 2, 3, 3, 3),
    19: (2, 2, 4, 4, 4),
}


class VGG(nn.Module):
    def __init__(self, depths: tuple[int, ...], *, num_classes: int, in_chans: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_chans
        for width, depth in zip(WIDTHS, depths, strict=True):
            for _ in range(depth):
                # conv bias kept as in the paper's VGG-BN, so parameter counts match the published ones
                layers.append(ConvBNAct(channels, width, 3, bias=True))
                channels = width
            # ceil_mode keeps a 1×1 map at the fifth pool for 28×28 input; at 32×32 it changes nothing
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        self.head = classifier_head(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def vgg11(*, num_classes: int = 10, in_chans: int = 3) -> nn.Module:
    """VGG-11 with BatchNorm, CIFAR head (512 → classes)."""
    return VGG(DEPTHS[11], num_classes=num_classes, in_chans=in_chans)


def vgg13(*, num_classes: int = 10, in_chans: int = 3) -> nn.Module:
    """VGG-13 with BatchNorm, CIFAR head (512 → classes)."""
    return VGG(DEPTHS[13], num_classes=num_classes, in_chans=in_chans)


def vgg16(*, num_classes: int = 10, in_chans: int = 3) -> nn.Module:
    """VGG-16 with BatchNorm, CIFAR head (512 → classes)."""
    return VGG(DEPTHS[16], num_classes=num_classes, in_chans=in_chans)


def vgg19(*, num_classes: int = 10, in_chans: int = 3) -> nn.Module:
    """VGG-19 with BatchNorm, CIFAR head (512 → classes)."""
    return VGG(DEPTHS[19], num_classes=num_classes, in_chans=in_chans)
