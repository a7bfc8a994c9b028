"""ShapeNet: four 3×3 conv-BN-ReLU layers, two max-pools, global average pooling, a linear head."""

from __future__ import annotations

from torch import nn


def _block(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def shapenet(*, num_classes: int, in_chans: int = 3, width: int = 16, **kwargs: object) -> nn.Module:
    """A four-layer CNN for 32×32 drawings (about 24k parameters)."""
    if kwargs:
        raise TypeError(f"shapenet got unexpected options: {', '.join(kwargs)}")
    return nn.Sequential(
        *_block(in_chans, width),
        nn.MaxPool2d(2),
        *_block(width, 2 * width),
        nn.MaxPool2d(2),
        *_block(2 * width, 2 * width),
        *_block(2 * width, 2 * width),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(2 * width, num_classes),
    )
