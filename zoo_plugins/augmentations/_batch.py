"""Per-image values (N,) against a batch (N, C, H, W): broadcasting them, and keeping unselected images."""

from __future__ import annotations

import torch


def per_image(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``values`` (N,) viewed to broadcast against the batch ``x``."""
    return values.view(-1, *([1] * (x.ndim - 1)))


def where_applied(apply: torch.Tensor, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The augmented image where ``apply`` (bool, N) is True, the input image, bit for bit, elsewhere."""
    return torch.where(per_image(apply, x), out, x)
