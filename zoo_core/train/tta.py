"""Test-time augmentation: average a classifier's logits over mirrored and shifted views of each batch.

- ``flip``: the mean of the image and its mirror image;
- ``flip-translate`` (airbench's level 2): half the weight on the flip pair of the image itself, a quarter
  on the flip pair of each of two copies shifted by one pixel, up-left and down-right (reflect padding).
All views go through the model as one batch: one forward pass per batch, whatever the mode.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# (shift in pixels, weight) of each view pair: a shift of +1 shows the image moved down-right by one pixel
VIEWS: dict[str, list[tuple[int, float]]] = {
    "none": [(0, 1.0)],
    "flip": [(0, 1.0)],
    "flip-translate": [(0, 0.5), (-1, 0.25), (1, 0.25)],
}


def shift(x: torch.Tensor, pixels: int) -> torch.Tensor:
    """``x`` moved by ``pixels`` down and right (negative: up and left), the border reflected."""
    if pixels == 0:
        return x
    p = abs(pixels)
    padded = F.pad(x, (p, p, p, p), mode="reflect")
    h, w = x.shape[-2:]
    start = p - pixels  # moving content down-right means reading the window from up-left
    return padded[..., start : start + h, start : start + w]


class TestTimeAugmentation(nn.Module):
    """Wraps ``model``: ``forward(x)`` is the weighted mean of its logits over the views of ``mode``."""

    __test__ = False  # not a pytest class

    def __init__(self, model: nn.Module, mode: str) -> None:
        super().__init__()
        if mode not in VIEWS:
            raise ValueError(f"unknown TTA mode {mode!r} (known: {', '.join(VIEWS)})")
        self.model, self.mode = model, mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "none":
            return self.model(x)
        views, weights = [], []
        for pixels, weight in VIEWS[self.mode]:
            moved = shift(x, pixels)
            views += [moved, moved.flip(-1)]
            weights += [weight / 2, weight / 2]
        n = x.shape[0]
        logits = self.model(torch.cat(views)).float().view(len(views), n, -1)
        return torch.einsum("v,vnk->nk", torch.tensor(weights, device=logits.device), logits)
