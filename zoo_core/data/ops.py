"""Batched image operations on N×C×H×W tensors of any device: per-image randomness, whole batch at once.

Random numbers come from ``generator`` (which must live on ``x.device``; None uses the default one), so the
same seed gives the same result, and nothing here synchronises the host with the device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def random_flip(x: torch.Tensor, generator: torch.Generator | None = None, p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability ``p`` (one draw per image)."""
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < p
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(-1), x)


def random_crop(
    x: torch.Tensor, padding: int, generator: torch.Generator | None = None, fill: float = 0.0
) -> torch.Tensor:
    """Pad each image by ``padding`` on every side (with ``fill``) and take a random H×W window of it,
    i.e. translate each image by up to ``padding`` pixels in each direction."""
    if padding <= 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding), value=fill)
    offsets = torch.randint(0, 2 * padding + 1, (2, n), generator=generator, device=x.device)
    # every H×W window as a view (N, C, oy, ox, H, W); one indexing gather picks each image's own window
    windows = padded.unfold(2, h, 1).unfold(3, w, 1)
    return windows[torch.arange(n, device=x.device), :, offsets[0], offsets[1]]


def normalize(
    x: torch.Tensor, mean: Sequence[float] | torch.Tensor, std: Sequence[float] | torch.Tensor
) -> torch.Tensor:
    """uint8 images (0–255) → float32 ``(x / 255 - mean) / std`` per channel."""
    scale, shift = affine_for(mean, std, x.device)
    return torch.addcmul(shift, x.to(torch.float32), scale)


def affine_for(
    mean: Sequence[float] | torch.Tensor, std: Sequence[float] | torch.Tensor, device: torch.device | str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) of shape (1, C, 1, 1) on ``device`` so that ``x_uint8 * scale + shift`` normalizes;
    a loader computes them once rather than copying mean/std to the device every batch."""
    mean = torch.as_tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    return 1.0 / (255.0 * std), -mean / std
