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
    return flip_where(x, torch.rand(x.shape[0], generator=generator, device=x.device) < p)


def flip_where(x: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror left-right the images whose entry of the bool vector ``flip`` is true."""
    n, w = x.shape[0], x.shape[-1]
    cols = torch.arange(w, device=x.device)
    cols = torch.where(flip.view(n, 1), w - 1 - cols, cols)
    # one gather with each image's column order: a single pass, where flip-then-select would take two
    return x.gather(-1, cols.view(n, *([1] * (x.dim() - 2)), w).expand(x.shape))


def random_crop(
    x: torch.Tensor,
    padding: int,
    generator: torch.Generator | None = None,
    fill: float = 0.0,
    padding_mode: str = "constant",
) -> torch.Tensor:
    """Pad each image by ``padding`` on every side (with ``fill``, or reflected with ``padding_mode=
    "reflect"``) and take a random H×W window of it: a translation by up to ``padding`` pixels each way."""
    if padding <= 0:
        return x
    padded = pad(x, padding, padding_mode, fill)
    return random_window(padded, (x.shape[-2], x.shape[-1]), generator)


def pad(x: torch.Tensor, padding: int, padding_mode: str = "constant", fill: float = 0) -> torch.Tensor:
    """``x`` padded by ``padding`` pixels on every side: ``fill`` ("constant") or mirrored ("reflect")."""
    if padding_mode == "reflect":
        return F.pad(x, (padding,) * 4, mode="reflect")
    return F.pad(x, (padding,) * 4, value=fill)


def random_window(
    padded: torch.Tensor,
    size: tuple[int, int],
    generator: torch.Generator | None = None,
    index: torch.Tensor | None = None,
) -> torch.Tensor:
    """A random ``size`` = (H, W) window of each image of ``padded`` (N×C×H'×W'), or of each image
    ``padded[index]`` — gathered straight from the full tensor, without copying the chosen images first."""
    h, w = size
    rows = torch.arange(len(padded), device=padded.device) if index is None else index
    n = len(rows)
    oy = torch.randint(0, padded.shape[-2] - h + 1, (n,), generator=generator, device=padded.device)
    ox = torch.randint(0, padded.shape[-1] - w + 1, (n,), generator=generator, device=padded.device)
    # every window as a view (N, C, oy, ox, H, W); one indexing gather picks each image's own window
    windows = padded.unfold(2, h, 1).unfold(3, w, 1)
    return windows[rows, :, oy, ox]


def normalize(
    x: torch.Tensor, mean: Sequence[float] | torch.Tensor, std: Sequence[float] | torch.Tensor
) -> torch.Tensor:
    """uint8 images (0–255) → float32 ``(x / 255 - mean) / std`` per channel."""
    scale, shift = affine_for(mean, std, x.device)
    return torch.mul(x, scale).add_(shift)  # uint8 × float32 promotes in the kernel: no float copy first


def affine_for(
    mean: Sequence[float] | torch.Tensor, std: Sequence[float] | torch.Tensor, device: torch.device | str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) of shape (1, C, 1, 1) on ``device`` so that ``x_uint8 * scale + shift`` normalizes;
    a loader computes them once rather than copying mean/std to the device every batch."""
    mean = torch.as_tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    return 1.0 / (255.0 * std), -mean / std
