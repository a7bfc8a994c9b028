"""Random rectangles, one per image, and the pixel masks they cover (shared by cutmix and cutout)."""

from __future__ import annotations

import torch


def sample_boxes(
    heights: torch.Tensor,
    widths: torch.Tensor,
    size: tuple[int, int],
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Boxes of the given sizes (N,) centred anywhere in an image of ``size`` (H, W), clipped at its border.

    Returns ``top, left, bottom, right`` (int64, N), bottom and right exclusive. A box of size 0 is empty.
    """
    h, w = size
    device = heights.device
    cy = torch.randint(0, h, heights.shape, device=device, generator=generator)
    cx = torch.randint(0, w, widths.shape, device=device, generator=generator)
    top, left = cy - heights // 2, cx - widths // 2
    return top.clamp(0, h), left.clamp(0, w), (top + heights).clamp(0, h), (left + widths).clamp(0, w)


def box_mask(
    top: torch.Tensor, left: torch.Tensor, bottom: torch.Tensor, right: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    """Bool mask (N, 1, H, W) that is True inside each image's box, built from aranges (no per-image loop)."""
    h, w = size
    rows = torch.arange(h, device=top.device)
    cols = torch.arange(w, device=top.device)
    in_rows = (rows >= top[:, None]) & (rows < bottom[:, None])
    in_cols = (cols >= left[:, None]) & (cols < right[:, None])
    return (in_rows[:, :, None] & in_cols[:, None, :]).unsqueeze(1)


def box_area(
    top: torch.Tensor, left: torch.Tensor, bottom: torch.Tensor, right: torch.Tensor
) -> torch.Tensor:
    """Pixels inside each box (int64, N)."""
    return (bottom - top) * (right - left)
