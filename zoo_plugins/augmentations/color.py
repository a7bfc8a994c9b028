"""Photometric batch augmentations: colour jitter and Gaussian blur, with factors drawn per image."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from zoo_core.data.ops import device_constant
from zoo_plugins.augmentations._batch import per_image, where_applied
from zoo_plugins.augmentations._checks import check_num_classes, check_probability, require
from zoo_plugins.augmentations._random import apply_mask, uniform

# ITU-R 601-2 luma, the weights torchvision uses for grayscale (and so for contrast and saturation).
_LUMA = (0.2989, 0.587, 0.114)


def _channel_constant(values: tuple[float, ...], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Per-channel constants (1, C, 1, 1), made once per device (``device_constant``)."""
    return device_constant(values, device, dtype).view(1, -1, 1, 1)


def _gray(pixels: torch.Tensor) -> torch.Tensor:
    """Luma (N, 1, H, W) of RGB pixels; a one-channel image is its own gray."""
    if pixels.shape[1] != 3:
        return pixels.mean(1, keepdim=True)
    return (pixels * _channel_constant(_LUMA, pixels.device, pixels.dtype)).sum(1, keepdim=True)


def jitter_batch(
    x: torch.Tensor,
    brightness: torch.Tensor,
    contrast: torch.Tensor,
    saturation: torch.Tensor,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> torch.Tensor:
    """Adjust brightness, then contrast, then saturation of each image by its factors (N,) each.

    The formulas are torchvision's ``adjust_brightness/contrast/saturation`` for float images, applied to
    pixel values: with ``mean``/``std`` the normalized batch is mapped back to [0, 1] first (and clamped
    there after each step, as torchvision does) and normalized again at the end; without them the batch is
    taken as pixel values and left unclamped, since its range is unknown.
    """
    bounded = mean is not None and std is not None
    if bounded:
        shift = _channel_constant(tuple(mean), x.device, x.dtype)
        scale = _channel_constant(tuple(std), x.device, x.dtype)
        pixels = torch.addcmul(shift, x, scale)
    else:
        pixels = x

    def factor(values: torch.Tensor) -> torch.Tensor:
        return per_image(values, x).to(x.dtype)

    def bound(image: torch.Tensor) -> torch.Tensor:  # image is always a fresh tensor here
        return image.clamp_(0.0, 1.0) if bounded else image

    # torchvision blends as ratio·image + (1 − ratio)·other; lerp(other, image, ratio) is that in one pass.
    pixels = bound(pixels * factor(brightness))
    pixels = bound(torch.lerp(_gray(pixels).mean((-3, -2, -1), keepdim=True), pixels, factor(contrast)))
    pixels = bound(torch.lerp(_gray(pixels), pixels, factor(saturation)))
    return (pixels - shift).div_(scale) if bounded else pixels


@dataclass(frozen=True, kw_only=True)
class ColorJitter:
    """Colour jitter: random brightness, contrast and saturation per image, in pixel space via mean/std.

    Each factor is drawn uniformly from [max(0, 1 − v), 1 + v] for option value v (0 turns that part off).
    ``mean`` and ``std`` are the data set's normalization; zoo passes them in from the data set.
    """

    num_classes: int
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    p: float = 1.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        check_num_classes("colorjitter", self.num_classes)
        for option in ("brightness", "contrast", "saturation"):
            value = getattr(self, option)
            require(value >= 0, "colorjitter", option, ">= 0", value)
        check_probability("colorjitter", self.p)
        require((self.mean is None) == (self.std is None), "colorjitter", "mean", "given with std", self.mean)
        if self.std is not None:
            require(all(s > 0 for s in self.std), "colorjitter", "std", "positive", self.std)

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = x.shape[0]
        factors = [
            uniform(n, max(0.0, 1.0 - v), 1.0 + v, x.device, generator)
            for v in (self.brightness, self.contrast, self.saturation)
        ]
        out = jitter_batch(x, *factors, mean=self.mean, std=self.std)
        return where_applied(apply_mask(n, self.p, x.device, generator), out, x), y


def gaussian_kernels(sigmas: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Normalized 1-D Gaussian kernels (N, kernel_size), one per sigma, as torchvision builds them."""
    half = kernel_size // 2
    taps = torch.linspace(-half, half, kernel_size, device=sigmas.device)
    kernels = torch.exp(-0.5 * (taps / sigmas[:, None]) ** 2)
    return kernels / kernels.sum(1, keepdim=True)


def blur_batch(x: torch.Tensor, sigmas: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Gaussian blur of each image with its own sigma (N,), reflect padding, as two separable passes.

    All images go through one grouped convolution: the batch becomes the channels of a single image and each
    channel gets its image's kernel.
    """
    n, c, h, w = x.shape
    half = kernel_size // 2
    weight = gaussian_kernels(sigmas, kernel_size).to(x.dtype).repeat_interleave(c, 0)  # (N·C, k)
    planes = F.pad(x.reshape(1, n * c, h, w), (half, half, half, half), mode="reflect")
    planes = F.conv2d(planes, weight.view(n * c, 1, 1, kernel_size), groups=n * c)
    planes = F.conv2d(planes, weight.view(n * c, 1, kernel_size, 1), groups=n * c)
    return planes.view(n, c, h, w)


@dataclass(frozen=True, kw_only=True)
class GaussianBlur:
    """Gaussian blur with a random sigma per image, drawn uniformly from [sigma_min, sigma_max]."""

    num_classes: int
    sigma_min: float = 0.1
    sigma_max: float = 2.0
    kernel_size: int | None = None
    p: float = 1.0

    def __post_init__(self) -> None:
        check_num_classes("blur", self.num_classes)
        require(self.sigma_min > 0, "blur", "sigma_min", "> 0", self.sigma_min)
        require(self.sigma_max >= self.sigma_min, "blur", "sigma_max", ">= sigma_min", self.sigma_max)
        if self.kernel_size is not None:
            require(
                self.kernel_size >= 1 and self.kernel_size % 2 == 1,
                "blur",
                "kernel_size",
                "a positive odd number",
                self.kernel_size,
            )
        check_probability("blur", self.p)

    def kernel(self, h: int, w: int) -> int:
        """The kernel size: ``kernel_size`` or 2·⌈3·sigma_max⌉ + 1, cut to fit the image's reflect padding."""
        size = self.kernel_size if self.kernel_size is not None else 2 * math.ceil(3 * self.sigma_max) + 1
        return min(size, 2 * min(h, w) - 1)

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n, h, w = x.shape[0], x.shape[-2], x.shape[-1]
        sigmas = uniform(n, self.sigma_min, self.sigma_max, x.device, generator)
        out = blur_batch(x, sigmas, self.kernel(h, w))
        return where_applied(apply_mask(n, self.p, x.device, generator), out, x), y
