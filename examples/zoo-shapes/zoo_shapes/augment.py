"""rot90: turn each image of a batch by a random multiple of 90°, all on the batch's device."""

from __future__ import annotations

import torch


class Rot90:
    """Turn each image by 90°, 180° or 270° with probability ``p`` (only 180° when it is not square).

    The batch is turned three times, once per angle, and each image picks its result: no loop over images.
    Labels pass through unchanged, integer or soft: a turned shape is the same shape.
    """

    def __init__(self, p: float = 0.5) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], not {p}")
        self.p = p

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = x.shape[0]
        turn = torch.rand(n, device=x.device, generator=generator) < self.p
        square = x.shape[-1] == x.shape[-2]
        quarters = torch.randint(1, 4, (n,), device=x.device, generator=generator) if square else None
        out = x
        for k in (1, 2, 3) if square else (2,):
            chosen = turn & (quarters == k) if quarters is not None else turn
            out = torch.where(chosen.view(n, 1, 1, 1), torch.rot90(x, k, dims=(2, 3)), out)
        return out, y


def rot90(*, num_classes: int, p: float = 0.5) -> Rot90:
    """Turn each image by a random multiple of 90° (probability p)."""
    return Rot90(p)
