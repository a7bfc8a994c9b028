"""torchvision's ResNet-18 built through ``torchvision.models`` and adapted to 32×32 input: the 7×7
stride-2 stem conv becomes 3×3 stride 1 and the max-pool is removed, as in the CIFAR variant. It starts
from torchvision's own initialisation, or with ``pretrained=True`` (``zoo train --init pretrained``) from
torchvision's ImageNet weights, downloaded by torchvision; the new 3×3 stem is never pretrained."""

from __future__ import annotations

import torchvision
from torch import nn


def tv_resnet18(*, num_classes: int | None = 10, in_chans: int = 3, pretrained: bool = False) -> nn.Module:
    """torchvision ResNet-18 adapted to 32×32 (3×3 stride-1 stem, no max-pool)."""
    if pretrained:  # ImageNet weights come with their 1,000-class head: replaced when other classes are asked
        model = torchvision.models.resnet18(weights=torchvision.models.ResNet18_Weights.IMAGENET1K_V1)
        if num_classes is not None and num_classes != model.fc.out_features:
            model.fc = nn.Linear(model.fc.in_features, num_classes)
    else:
        model = torchvision.models.resnet18(weights=None, num_classes=num_classes or 1000)
    model.conv1 = nn.Conv2d(in_chans, 64, 3, 1, 1, bias=False)
    # torchvision initialises conv1 with Kaiming normal (fan_out); the replacement follows suit
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    return model
