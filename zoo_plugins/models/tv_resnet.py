"""torchvision's ResNet-18 built through ``torchvision.models`` and adapted to 32×32 input: the 7×7
stride-2 stem conv becomes 3×3 stride 1 and the max-pool is removed, as in the CIFAR variant. Weights are
never downloaded; the model starts from torchvision's own initialisation."""

from __future__ import annotations

import torchvision
from torch import nn


def tv_resnet18(*, num_classes: int = 10, in_chans: int = 3) -> nn.Module:
    """torchvision ResNet-18 adapted to 32×32 (3×3 stride-1 stem, no max-pool)."""
    model = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(in_chans, 64, 3, 1, 1, bias=False)
    # torchvision initialises conv1 with Kaiming normal (fan_out); the replacement follows suit
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    return model
