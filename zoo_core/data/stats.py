"""Per-channel mean and standard deviation of uint8 images, for data sets that do not declare them."""

from __future__ import annotations

import torch


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per channel of uint8 N×C×H×W ``images``, as fractions of 255.

    Exact, from a 256-bin histogram per channel: faster than float arithmetic over every pixel and free of
    rounding error however many images there are.
    """
    if images.dtype != torch.uint8 or images.dim() != 4 or len(images) == 0:
        raise ValueError(f"need a non-empty uint8 N×C×H×W batch, got {images.dtype} {tuple(images.shape)}")
    values = torch.arange(256, dtype=torch.float64)
    means, stds = [], []
    for c in range(images.shape[1]):
        counts = torch.bincount(images[:, c].reshape(-1), minlength=256).cpu().to(torch.float64)
        total = counts.sum()
        mean = (counts * values).sum() / total
        var = (counts * (values - mean).square()).sum() / total
        means.append(mean.item() / 255)
        stds.append(var.sqrt().item() / 255)
    return tuple(means), tuple(stds)
