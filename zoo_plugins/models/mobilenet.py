"""MobileNet v1 (Howard et al. 2017) and v2 (Sandler et al. 2018), CIFAR variants: the papers' layer
tables with the stem at stride 1 (and, for v2, the first stride-2 stage at stride 1), so a 32×32 image
ends at 2×2 (v1) or 4×4 (v2) rather than 1×1; global average pooling and a linear classifier."""

from __future__ import annotations

import torch
from torch import nn

from zoo_plugins.models.layers import ConvBNAct, DepthwiseSeparable, cifar_stem, classifier_head

# (output channels, stride) of the 13 depthwise-separable layers of v1 (table 1)
V1_LAYERS = (
    [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
)

# (expansion t, output channels c, repeats n, stride s) of v2's bottleneck stages (table 2); the second
# stage's stride is 1 instead of 2 for 32×32 input
V2_STAGES = [
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


class MobileNetV1(nn.Module):
    def __init__(self, *, num_classes: int, in_chans: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [cifar_stem(in_chans, 32)]
        channels = 32
        for out_ch, stride in V1_LAYERS:
            layers.append(DepthwiseSeparable(channels, out_ch, stride))
            channels = out_ch
        self.features = nn.Sequential(*layers)
        self.head = classifier_head(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class InvertedResidual(nn.Module):
    """v2's block: 1×1 expansion, 3×3 depthwise, linear 1×1 projection (no activation, which would destroy
    information in the narrow bottleneck); a residual connection when input and output shapes agree."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_ch * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(ConvBNAct(in_ch, hidden, 1, act=nn.ReLU6))
        layers += [
            ConvBNAct(hidden, hidden, 3, stride, groups=hidden, act=nn.ReLU6),
            ConvBNAct(hidden, out_ch, 1, act=None),
        ]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


class MobileNetV2(nn.Module):
    def __init__(self, *, num_classes: int, in_chans: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [cifar_stem(in_chans, 32, act=nn.ReLU6)]
        channels = 32
        for expansion, out_ch, repeats, stride in V2_STAGES:
            for i in range(repeats):
                layers.append(InvertedResidual(channels, out_ch, stride if i == 0 else 1, expansion))
                channels = out_ch
        layers.append(ConvBNAct(channels, 1280, 1, act=nn.ReLU6))
        self.features = nn.Sequential(*layers)
        self.head = classifier_head(1280, num_classes, dropout=0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def mobilenet_v1(*, num_classes: int = 10, in_chans: int = 3) -> nn.Module:
    """MobileNet v1 (depthwise-separable convs), CIFAR variant."""
    return MobileNetV1(num_classes=num_classes, in_chans=in_chans)


def mobilenet_v2(*, num_classes: int = 10, in_chans: int = 3) -> nn.Module:
    """MobileNet v2 (inverted residuals, linear bottlenecks), CIFAR variant."""
    return MobileNetV2(num_classes=num_classes, in_chans=in_chans)
