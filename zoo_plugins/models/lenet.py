"""LeNet-5 (LeCun et al. 1998): two 5×5 conv + 2×2 pool stages (6 and 16 maps) and three fully connected
layers (120, 84, classes), about 61.7k parameters. ReLU and max-pooling replace the paper's scaled tanh
and trainable subsampling, as is usual today; the layer shapes are the paper's."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# the paper's input frame: 28×28 digits were centred in a 32×32 field, so the last conv sees 5×5 maps
FRAME = 32


class LeNet5(nn.Module):
    def __init__(self, *, num_classes: int, in_chans: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 6, 5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            # identity at 32×32; inputs larger than the frame are pooled down to the paper's 5×5
            nn.AdaptiveAvgPool2d(5),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(1),
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(inplace=True),
            nn.Linear(120, 84),
            nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # centre smaller inputs (28×28 MNIST) in the 32×32 frame, as the paper did, with zeros
        pad_h, pad_w = max(FRAME - x.shape[-2], 0), max(FRAME - x.shape[-1], 0)
        if pad_h or pad_w:
            x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))
        return self.classifier(self.features(x))


def lenet(*, num_classes: int = 10, in_chans: int = 1) -> nn.Module:
    """LeNet-5 for 32×32 (and 28×28) digits, ~61.7k parameters."""
    return LeNet5(num_classes=num_classes, in_chans=in_chans)
