"""ResNet (He et al. 2016), CIFAR variant: a 3×3 stride-1 stem with no max-pool, four stages of 64, 128,
256 and 512 channels (stride 1, 2, 2, 2), global average pooling and one linear layer. Basic blocks for
ResNet-18/34, bottlenecks (expansion 4) for ResNet-50; projection shortcuts (1×1 conv + BN) where the
shape changes."""

from __future__ import annotations

import torch
from torch import nn

from zoo_plugins.models.layers import ConvBNAct, cifar_stem, classifier_head


def _shortcut(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    return ConvBNAct(in_ch, out_ch, 1, stride, act=None)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_ch: int, width: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(ConvBNAct(in_ch, width, 3, stride), ConvBNAct(width, width, 3, act=None))
        self.shortcut = _shortcut(in_ch, width, stride)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int) -> None:
        super().__init__()
        out_ch = width * self.expansion
        # stride on the 3×3 conv (the "ResNet v1.5" placement), which loses less information than a
        # strided 1×1
        self.body = nn.Sequential(
            ConvBNAct(in_ch, width, 1),
            ConvBNAct(width, width, 3, stride),
            ConvBNAct(width, out_ch, 1, act=None),
        )
        self.shortcut = _shortcut(in_ch, out_ch, stride)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        depths: tuple[int, int, int, int],
        *,
        num_classes: int,
        in_chans: int,
    ) -> None:
        super().__init__()
        self.stem = cifar_stem(in_chans, 64)
        stages: list[nn.Module] = []
        channels = 64
        for i, (width, depth) in enumerate(zip((64, 128, 256, 512), depths, strict=True)):
            blocks = []
            for j in range(depth):
                blocks.append(block(channels, width, 2 if i > 0 and j == 0 else 1))
                channels = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = classifier_head(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))


def resnet18(*, num_classes: int = 10, in_chans: int = 3) -> nn.Module:
    """ResNet-18, CIFAR variant (3×3 stem, no max-pool)."""
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes=num_classes, in_chans=in_chans)


def resnet34(*, num_classes: int = 10, in_chans: int = 3) -> nn.Module:
    """ResNet-34, CIFAR variant (3×3 stem, no max-pool)."""
    return ResNet(BasicBlock, (3, 4, 6, 3), num_classes=num_classes, in_chans=in_chans)


def resnet50(*, num_classes: int = 10, in_chans: int = 3) -> nn.Module:
    """ResNet-50 with bottleneck blocks, CIFAR variant (3×3 stem, no max-pool)."""
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes=num_classes, in_chans=in_chans)
