"""Geometric batch augmentations: horizontal flip, crop (pad and translate) and rotation, per image."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from zoo_core.data.ops import random_crop, random_flip
from zoo_plugins.augmentations._batch import where_applied
from zoo_plugins.augmentations._checks import check_num_classes, check_probability, require
from zoo_plugins.augmentations._random import apply_mask, uniform


@dataclass(frozen=True, kw_only=True)
class Flip:
    """Horizontal flip: mirror each image left-right with probability p."""

    num_classes: int
    p: float = 0.5

    def __post_init__(self) -> None:
        check_num_classes("flip", self.num_classes)
        check_probability("flip", self.p)

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return random_flip(x, generator=generator, p=self.p), y


@dataclass(frozen=True, kw_only=True)
class Crop:
    """Random crop: pad each image by `padding` pixels and take a random window of the original size."""

    num_classes: int
    padding: int = 4
    fill: float = 0.0
    p: float = 1.0

    def __post_init__(self) -> None:
        check_num_classes("crop", self.num_classes)
        require(self.padding >= 0, "crop", "padding", ">= 0", self.padding)
        check_probability("crop", self.p)

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = random_crop(x, self.padding, generator=generator, fill=self.fill)
        return where_applied(apply_mask(x.shape[0], self.p, x.device, generator), out, x), y


def rotate_batch(x: torch.Tensor, degrees: torch.Tensor, padding_mode: str = "zeros") -> torch.Tensor:
    """Rotate each image counter-clockwise about its centre by its angle (N,) in degrees, bilinear.

    One ``affine_grid``/``grid_sample`` for the whole batch. The grid works in coordinates normalized to
    [−1, 1] on each axis, so on a non-square image the off-diagonal terms carry the aspect ratio H/W.
    """
    n, c, h, w = x.shape
    radians = degrees.to(x.dtype) * (math.pi / 180.0)
    cos, sin = torch.cos(radians), torch.sin(radians)
    zero = torch.zeros_like(cos)
    theta = torch.stack([cos, -sin * (h / w), zero, sin * (w / h), cos, zero], 1).view(n, 2, 3)
    grid = F.affine_grid(theta, [n, c, h, w], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding_mode, align_corners=False)


_PADDING_MODES = ("zeros", "border", "reflection")


@dataclass(frozen=True, kw_only=True)
class Rotate:
    """Random rotation: turn each image by an angle drawn uniformly from [−degrees, degrees]."""

    num_classes: int
    degrees: float = 15.0
    padding_mode: str = "zeros"
    p: float = 1.0

    def __post_init__(self) -> None:
        check_num_classes("rotate", self.num_classes)
        require(self.degrees >= 0, "rotate", "degrees", ">= 0", self.degrees)
        require(
            self.padding_mode in _PADDING_MODES,
            "rotate",
            "padding_mode",
            " or ".join(_PADDING_MODES),
            self.padding_mode,
        )
        check_probability("rotate", self.p)

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = x.shape[0]
        angles = uniform(n, -self.degrees, self.degrees, x.device, generator)
        out = rotate_batch(x, angles, self.padding_mode)
        return where_applied(apply_mask(n, self.p, x.device, generator), out, x), y
