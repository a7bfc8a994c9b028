"""The shapes data set: circles, squares, triangles and crosses drawn with tensor operations.

Nothing is downloaded or read: each split is drawn from its own seed, so it is the same on every machine.
The builder returns the bare in-memory contract — ``classes``, ``images`` (uint8 N×C×H×W), ``labels``
(int64 N) — and nothing else: zoo needs no ``__getitem__`` of an in-memory data set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

CLASSES = ["circle", "square", "triangle", "cross"]
SIZES = {"train": 2000, "test": 500}
SEEDS = {"train": 0, "test": 1}


@dataclass
class Shapes:
    """Drawn images in memory: exactly the in-memory data-set contract."""

    classes: list[str]
    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


def draw(labels: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """One shape per label (an index into CLASSES) on a noisy background: uint8 N×3×size×size."""
    n = len(labels)
    rand = lambda *shape: torch.rand(*shape, generator=generator)  # noqa: E731
    radius = (0.18 + 0.14 * rand(n)) * size
    cx = radius + rand(n) * (size - 2 * radius)  # the whole shape stays inside the image
    cy = radius + rand(n) * (size - 2 * radius)
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    dx = coords.view(1, 1, size) - cx.view(n, 1, 1)  # N×1×W
    dy = coords.view(1, size, 1) - cy.view(n, 1, 1)  # N×H×1
    r = radius.view(n, 1, 1)
    circle = dx**2 + dy**2 <= r**2
    square = (dx.abs() <= 0.8 * r) & (dy.abs() <= 0.8 * r)
    triangle = (dy <= 0.8 * r) & (2 * dx.abs() <= dy + r)  # apex at the top, base at the bottom
    bar = r / 3
    cross = ((dx.abs() <= bar) & (dy.abs() <= r)) | ((dy.abs() <= bar) & (dx.abs() <= r))
    masks = torch.stack([circle, square, triangle, cross], 1)  # N×4×H×W
    mask = masks[torch.arange(n), labels].unsqueeze(1)  # N×1×H×W
    background = 0.25 * rand(n, 3, 1, 1) + 0.1 * rand(n, 3, size, size)
    colour = 0.45 + 0.55 * rand(n, 3, 1, 1)
    images = torch.where(mask, colour, background)
    return (images * 255).round().clamp(0, 255).to(torch.uint8)


def shapes(*, root: Path | None = None, split: str, image_size: int = 32, count: int | None = None) -> Shapes:
    """Circles, squares, triangles and crosses drawn at random (``root`` is unused: nothing is read).

    ``image_size`` is the image side in pixels (``zoo train shapes … --image-size 16``); ``count`` the number
    of images (default 2,000 train, 500 test).
    """
    if split not in SIZES:
        raise ValueError(f"shapes has the splits {', '.join(SIZES)}, not {split!r}")
    generator = torch.Generator().manual_seed(SEEDS[split])
    n = SIZES[split] if count is None else count
    labels = torch.randint(0, len(CLASSES), (n,), generator=generator)
    return Shapes(list(CLASSES), draw(labels, image_size, generator), labels)
