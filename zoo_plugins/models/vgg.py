"""VGG with BatchNorm (Simonyan & Zisserman 2015), CIFAR variant: the paper's 3×3 conv stacks and five
2×2 max-pools, then global average pooling and one linear layer 512 → num_classes instead of the
ImageNet head's three 4096-wide layers."""

from __future__ import annotations

import torch
from torch import nn

from zoo_plugins.models.layers import ConvBNAct, classifier_head

# channels of each 3×3 conv, "M" a 2×2 max-pool (configurations A, B, D and E of the paper's table 1)
CONFIGS: dict[int, list[int | str]] = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


class VGG(nn.Module):
    def __init__(self, config: list[int | str], *, num_classes: int, in_chans: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_chans
        for item in config:
            if item == "M":
                # ceil_mode keeps a 1×1 map at the fifth pool for 28×28 input; at 32×32 it changes nothing
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
            else:
                # conv bias kept as in the paper's VGG-BN, so parameter counts match the published ones
                layers.append(ConvBNAct(channels, int(item), 3, bias=True))
                channels = int(item)
        self.features = nn.Sequential(*layers)
        self.head = classifier_head(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def vgg11(*, num_classes: int = 10, in_chans: int = 3) -> nn.Module:
    """VGG-11 with BatchNorm, CIFAR head (512 → classes)."""
    return VGG(CONFIGS[11], num_classes=num_classes, in_chans=in_chans)


def vgg13(*, num_classes: int = 10, in_chans: int = 3) -> nn.Module:
    """VGG-13 with BatchNorm, CIFAR head (512 → classes)."""
    return VGG(CONFIGS[13], num_classes=num_classes, in_chans=in_chans)


def vgg16(*, num_classes: int = 10, in_chans: int = 3) -> nn.Module:
    """VGG-16 with BatchNorm, CIFAR head (512 → classes)."""
    return VGG(CONFIGS[16], num_classes=num_classes, in_chans=in_chans)


def vgg19(*, num_classes: int = 10, in_chans: int = 3) -> nn.Module:
    """VGG-19 with BatchNorm, CIFAR head (512 → classes)."""
    return VGG(CONFIGS[19], num_classes=num_classes, in_chans=in_chans)
