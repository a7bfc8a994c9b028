"""Per-channel mean and standard deviation of uint8 images, for data sets that do not declare them: one
rule, from exact integer moments, whether the images are a tensor in memory or a sample decoded image by
image in worker processes (which send back the moments, not the images)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def channel_moments(levels: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """(pixels per channel, the sum of the levels, the sum of their squares) per channel of one uint8 image,
    H×W or H×W×C, as exact int64, from a 256-bin histogram per channel."""
    flat = np.asarray(levels).reshape(-1, levels.shape[-1] if levels.ndim == 3 else 1)
    values = np.arange(256, dtype=np.int64)
    counts = np.stack([np.bincount(flat[:, c], minlength=256) for c in range(flat.shape[1])])
    return flat.shape[0], counts @ values, counts @ (values * values)


def stats_from_moments(
    count: int, sums: Sequence[int] | np.ndarray, squares: Sequence[int] | np.ndarray
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per channel, as fractions of 255, from ``channel_moments`` (summed over images)."""
    mean = np.asarray(sums, dtype=np.float64) / count
    var = np.maximum(np.asarray(squares, dtype=np.float64) / count - mean**2, 0.0)
    return tuple(float(v) / 255 for v in mean), tuple(float(v) / 255 for v in np.sqrt(var))


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) per channel of uint8 N×C×H×W ``images``, as fractions of 255: exact, from a 256-bin
    histogram per channel (faster than float arithmetic over every pixel, and free of rounding error)."""
    if images.dtype != torch.uint8 or images.dim() != 4 or len(images) == 0:
        raise ValueError(f"need a non-empty uint8 N×C×H×W batch, got {images.dtype} {tuple(images.shape)}")
    values = torch.arange(256, dtype=torch.int64)
    counts = torch.stack(
        [torch.bincount(images[:, c].reshape(-1), minlength=256).cpu() for c in range(images.shape[1])]
    )
    count = int(counts[0].sum())
    return stats_from_moments(
        count, (counts * values).sum(1).numpy(), (counts * values * values).sum(1).numpy()
    )
