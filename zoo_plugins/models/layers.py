"""Blocks that several model families share: conv-BN-activation, the CIFAR stem, depthwise-separable
convolution and the Inception module. Each lives here once; the families import them."""

from __future__ import annotations

import torch
from torch import nn


class ConvBNAct(nn.Sequential):
    """A k×k convolution, BatchNorm and an activation (none when ``act`` is None), 'same' padding.

    The conv has no bias by default because BatchNorm's shift makes it redundant; ``bias=True`` exists for
    designs whose published parameter counts include it (VGG-BN).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int = 3,
        stride: int = 1,
        *,
        groups: int = 1,
        bias: bool = False,
        act: type[nn.Module] | None = nn.ReLU,
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, out_ch, kernel_size, stride, kernel_size // 2, groups=groups, bias=bias),
            nn.BatchNorm2d(out_ch),
        ]
        if act is not None:
            layers.append(act(inplace=True))
        super().__init__(*layers)


def cifar_stem(in_chans: int, out_ch: int, act: type[nn.Module] = nn.ReLU) -> ConvBNAct:
    """The stem of the CIFAR variants: one 3×3 stride-1 conv-BN-activation and no max-pool, so a 32×32
    image keeps its resolution into the first stage instead of being cut to 8×8 by the ImageNet stem."""
    return ConvBNAct(in_chans, out_ch, 3, 1, act=act)


class DepthwiseSeparable(nn.Sequential):
    """MobileNet's factorised conv: a 3×3 depthwise conv (groups = channels), then a 1×1 pointwise conv,
    each followed by BatchNorm and ReLU (Howard et al. 2017, fig. 3)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__(
            ConvBNAct(in_ch, in_ch, 3, stride, groups=in_ch),
            ConvBNAct(in_ch, out_ch, 1),
        )


class Inception(nn.Module):
    """An Inception module (Szegedy et al. 2015): parallel 1×1, 1×1→3×3, 1×1→5×5 and 3×3-max-pool→1×1
    branches, concatenated along channels. With ``double_3x3`` the 5×5 is factorised into two 3×3 convs
    (Inception-v2), the same receptive field for fewer multiply-adds."""

    def __init__(
        self,
        in_ch: int,
        ch1x1: int,
        ch3x3_reduce: int,
        ch3x3: int,
        ch5x5_reduce: int,
        ch5x5: int,
        pool_proj: int,
        *,
        double_3x3: bool = False,
    ) -> None:
        super().__init__()
        self.branch1 = ConvBNAct(in_ch, ch1x1, 1)
        self.branch2 = nn.Sequential(ConvBNAct(in_ch, ch3x3_reduce, 1), ConvBNAct(ch3x3_reduce, ch3x3, 3))
        if double_3x3:
            wide: list[nn.Module] = [ConvBNAct(ch5x5_reduce, ch5x5, 3), ConvBNAct(ch5x5, ch5x5, 3)]
        else:
            wide = [ConvBNAct(ch5x5_reduce, ch5x5, 5)]
        self.branch3 = nn.Sequential(ConvBNAct(in_ch, ch5x5_reduce, 1), *wide)
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), ConvBNAct(in_ch, pool_proj, 1))
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)


def classifier_head(in_ch: int, num_classes: int, dropout: float = 0.0) -> nn.Sequential:
    """Global average pool, flatten, optional dropout and a linear layer: the head of every conv family
    here, which also makes the net accept any input size its strides allow."""
    layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten(1)]
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(in_ch, num_classes))
    return nn.Sequential(*layers)
