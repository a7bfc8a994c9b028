"""Mosaic for classification: four images tiled around a random centre, the label mixed by tile area.

Detection mosaics (YOLOv4/v5) tile on a double-size canvas and crop; here the output keeps the input size:
the centre (cy, cx) splits each image into four tiles, and each tile shows the central crop of its source
of the tile's size, so that the middle of every source image, where the object usually is, stays in view.
The top-left tile holds the image itself, the three others random partners.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from zoo_plugins.augmentations._checks import check_num_classes, check_probability, require
from zoo_plugins.augmentations._random import apply_mask, partners
from zoo_plugins.augmentations._targets import blend_targets


def mosaic_batch(
    x: torch.Tensor,
    y: torch.Tensor,
    cy: torch.Tensor,
    cx: torch.Tensor,
    sources: torch.Tensor,
    num_classes: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tile four sources around (cy, cx) (int64, N each) into each image; ``sources`` (4, N) in the order
    top-left, top-right, bottom-left, bottom-right. One gather for the whole batch.
    """
    n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    bottom = rows >= cy[:, None]  # (N, H): the row lies in a bottom tile
    right = cols >= cx[:, None]  # (N, W)
    tile_h = torch.where(bottom, h - cy[:, None], cy[:, None])
    tile_w = torch.where(right, w - cx[:, None], cx[:, None])
    # Row r of a tile that starts at row t0 and is tile_h high shows row r − t0 + (H − tile_h) // 2 of its
    # source: the source's central crop. Rows and columns are independent, so each is an (N, H) or (N, W) map.
    src_row = rows - torch.where(bottom, cy[:, None], 0) + (h - tile_h) // 2
    src_col = cols - torch.where(right, cx[:, None], 0) + (w - tile_w) // 2
    tile = bottom[:, :, None].long() * 2 + right[:, None, :].long()  # (N, H, W) in 0..3
    src_img = sources.T.gather(1, tile.view(n, -1)).view(n, h, w)
    mixed = x[src_img, :, src_row[:, :, None], src_col[:, None, :]].permute(0, 3, 1, 2)

    top_h, left_w = cy.float(), cx.float()
    bottom_h, right_w = h - top_h, w - left_w
    areas = torch.stack([top_h * left_w, top_h * right_w, bottom_h * left_w, bottom_h * right_w]) / (h * w)
    return mixed.contiguous(memory_format=_memory_format(x)), blend_targets(y, sources, areas, num_classes)


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    """Keep a channels_last batch channels_last (the gather yields a permuted layout)."""
    if x.ndim == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


@dataclass(frozen=True, kw_only=True)
class Mosaic:
    """Mosaic: tile four images around a random centre into one of the same size; soft targets by area."""

    num_classes: int
    margin: float = 0.25
    p: float = 1.0

    def __post_init__(self) -> None:
        check_num_classes("mosaic", self.num_classes)
        require(0.0 <= self.margin <= 0.5, "mosaic", "margin", "between 0 and 0.5", self.margin)
        check_probability("mosaic", self.p)

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
        device = x.device
        # The centre lies in the middle (1 − 2·margin) of each side; margin 0.25 is YOLOv5's choice.
        lo_y, lo_x = round(self.margin * h), round(self.margin * w)
        cy = torch.randint(lo_y, h - lo_y + 1, (n,), device=device, generator=generator)
        cx = torch.randint(lo_x, w - lo_x + 1, (n,), device=device, generator=generator)
        # An image left alone has its centre in the far corner: its own top-left tile covers all of it.
        keep = ~apply_mask(n, self.p, device, generator)
        cy, cx = torch.where(keep, h, cy), torch.where(keep, w, cx)
        own = torch.arange(n, device=device)
        sources = torch.stack([own, *(partners(n, device, generator) for _ in range(3))])
        return mosaic_batch(x, y, cy, cx, sources, self.num_classes)
