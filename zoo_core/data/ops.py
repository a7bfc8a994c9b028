"""Batched image operations on N×C×H×W tensors of any device: per-image randomness, whole batch at once.

Random numbers come from ``generator`` (which must live on ``x.device``; None uses the default one), so the
same seed gives the same result, and nothing here synchronises the host with the device.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

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
    return Normalize(mean, std, x.device)(x)


class Normalize:
    """The one normalization: uint8 images → float32 ``x * scale + shift`` per channel (``affine_for``'s
    pair: ``(x / 255 - mean) / std``), a multiply then an add, its constants made once on their device.

    A channels_last batch on a CPU is scaled by whole (1, C, H, W) planes, made once per size: per-channel
    values broadcast over it vary along its innermost dimension (C, 3 wide), which the CPU's vector kernels
    run several times slower; the same float32 products and sums either way."""

    def __init__(
        self,
        mean: Sequence[float] | torch.Tensor,
        std: Sequence[float] | torch.Tensor,
        device: torch.device | str = "cpu",
    ) -> None:
        self.scale, self.shift = affine_for(mean, std, device)
        self._planes: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        scale, shift = self._constants(x)
        return torch.mul(x, scale).add_(shift)  # uint8 × float32 promotes inside the kernel: no float copy

    def in_place(self, x: torch.Tensor) -> torch.Tensor:
        """A float32 batch (N×C×H×W) or image (C×H×W) of uint8 values (0–255) normalized in place (e.g.
        each image of a batch a worker stacks, while it is still in the core's cache)."""
        scale, shift = self._constants(x)
        return x.mul_(scale).add_(shift)

    def _constants(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scale, shift = self.scale, self.shift
        channels_inside = x.dim() in (3, 4) and x.shape[-3] > 1 and x.stride(-3) == 1
        if x.device.type == "cpu" and channels_inside:
            key = (int(x.shape[-2]), int(x.shape[-1]))
            if key not in self._planes:
                planes = (t.expand(1, -1, *key) for t in (scale, shift))
                self._planes[key] = tuple(  # type: ignore[assignment]
                    p.contiguous(memory_format=torch.channels_last) for p in planes
                )
            scale, shift = self._planes[key]
        return (scale, shift) if x.dim() == 4 else (scale[0], shift[0])


def affine_for(
    mean: Sequence[float] | torch.Tensor, std: Sequence[float] | torch.Tensor, device: torch.device | str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift) of shape (1, C, 1, 1) on ``device`` so that ``x_uint8 * scale + shift`` normalizes;
    a loader computes them once rather than copying mean/std to the device every batch."""
    mean = torch.as_tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    std = torch.as_tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1)
    return 1.0 / (255.0 * std), -mean / std


def center_crop(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The centre ``size`` = (H, W) window of every image (torchvision's rounding of the offsets)."""
    (h, w), (top, left) = size, centre_offsets((x.shape[-2], x.shape[-1]), size)
    return x[..., top : top + h, left : left + w]


def centre_offsets(stored: Sequence[int], size: Sequence[int]) -> tuple[int, int]:
    """(top, left) of the centre ``size`` = (h, w) window of an H×W image (torchvision's rounding)."""
    return round((stored[0] - size[0]) / 2.0), round((stored[1] - size[1]) / 2.0)


def resized_crop(x: torch.Tensor, boxes: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The one random-resized-crop rule: each image's own box (N×4 ints: top, left, height, width) of the
    stored image resized to ``size`` = (H, W), bilinear **without antialiasing** (the box is at most the
    stored image, at most 1 / crop_pct the output per side, so it rarely shrinks and never by much), in
    the input's dtype (uint8 rounded to the nearest level).

    Equal, in float, to cropping each image alone and resizing it with ``F.interpolate(mode="bilinear",
    align_corners=False)`` (torchvision's ``resized_crop`` without antialiasing): the source coordinates
    stay inside each box. Written as gathers because no torch kernel resizes a different window of every
    image of a batch: bilinear is separable, so two gathers of rows and two of columns make the whole batch
    in one pass each. ``resized_crop_one`` is its one-image form, for a DataLoader worker.
    """
    n, c = x.shape[:2]
    h, w = size
    top, left, height, width = (boxes[:, k].to(torch.float32).view(n, 1) for k in range(4))
    y0, y1, wy = _source(top, height, h, x.device)  # (N, h) source rows, and the second one's weight
    x0, x1, wx = _source(left, width, w, x.device)
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    channels = torch.arange(c, device=x.device).view(1, -1, 1)
    upper = x[batch, channels, y0.view(n, 1, h)].float()  # (N, C, h, W_in): rows gathered before widening
    lower = x[batch, channels, y1.view(n, 1, h)].float()
    blended = upper.add_(lower.sub_(upper).mul_(wy.view(n, 1, h, 1)))
    left_px = blended.gather(3, x0.view(n, 1, 1, w).expand(n, c, h, w))
    right_px = blended.gather(3, x1.view(n, 1, 1, w).expand(n, c, h, w))
    out = left_px.add_(right_px.sub_(left_px).mul_(wx.view(n, 1, 1, w)))
    return out if x.is_floating_point() else out.round_().to(x.dtype)


def resized_crop_one(image: torch.Tensor, box: Sequence[int], size: tuple[int, int]) -> torch.Tensor:
    """``resized_crop`` of one uint8 C×H×W image on a CPU, for a DataLoader worker: the box (top, left,
    height, width) resized to ``size`` bilinearly without antialiasing by torch's uint8 channels_last
    kernel, its fast path (the batched gathers are slow for one image). That kernel weighs in fixed point:
    within one level of ``resized_crop`` (tests/test_imagenet_style.py)."""
    top, left, height, width = (int(v) for v in box)
    window = image[None, :, top : top + height, left : left + width]
    if (height, width) == tuple(size):
        return window[0]
    window = window.contiguous(memory_format=torch.channels_last)
    return F.interpolate(window, size, mode="bilinear", align_corners=False, antialias=False)[0]


def _source(
    start: torch.Tensor, length: torch.Tensor, out: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For output pixels 0…out-1 of windows (start, length) (N×1 each): the two source pixels of each and
    the weight of the second, by ``align_corners=False``'s rule, clamped to the window."""
    i = torch.arange(out, device=device, dtype=torch.float32).view(1, out)
    coord = ((i + 0.5) * (length / out) - 0.5).clamp(min=0)
    low = coord.floor()
    weight = coord - low
    last = length - 1
    first = torch.minimum(low, last)
    second = torch.minimum(low + 1, last)
    return (start + first).long(), (start + second).long(), weight


def resized_crop_boxes(
    n: int,
    height: int,
    width: int,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    attempts: int = 10,
) -> torch.Tensor:
    """RandomResizedCrop's boxes (N×4 int64: top, left, height, width) for N images of height × width.

    torchvision's rule, for every image at once: up to ``attempts`` draws of an area share in ``scale`` and
    a log-uniform aspect ratio in ``ratio``; the first box that fits is placed uniformly; an image whose
    draws all miss gets the centre crop with the ratio clamped into ``ratio``. No host synchronisation.
    """
    area = height * width
    u = torch.rand(n, attempts, 4, generator=generator, device=device)
    target = area * (scale[0] + u[..., 0] * (scale[1] - scale[0]))
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    aspect = torch.exp(log_lo + u[..., 1] * (log_hi - log_lo))
    w = torch.sqrt(target * aspect).round()
    h = torch.sqrt(target / aspect).round()
    fits = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = fits.to(torch.uint8).argmax(dim=1, keepdim=True)  # the first attempt that fits (0 if none)
    any_fits = fits.any(dim=1)
    h = h.gather(1, first).squeeze(1)
    w = w.gather(1, first).squeeze(1)
    top = (u[..., 2].gather(1, first).squeeze(1) * (height - h + 1)).floor().clamp(max=height - h)
    left = (u[..., 3].gather(1, first).squeeze(1) * (width - w + 1)).floor().clamp(max=width - w)
    fallback = _fallback_tensor(height, width, tuple(ratio), top.device)
    boxes = torch.stack([top, left, h, w], dim=1)
    boxes = torch.where(any_fits.view(n, 1), boxes, fallback.view(1, 4))
    return boxes.long()


@functools.lru_cache(maxsize=256)
def device_constant(
    values: tuple[Any, ...], device: torch.device | str, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """The one cache of small constant tensors: ``values`` (numbers, or tuples of them for a table) as a
    tensor on ``device``, made once per device and dtype (torch's default dtype for the values when
    None). Copied to a GPU on every batch, such a constant would make the host wait for the device. The
    tensor is shared: read it, never write into it."""
    return torch.tensor(values, dtype=dtype, device=device)


def _fallback_tensor(
    height: int, width: int, ratio: tuple[float, float], device: torch.device
) -> torch.Tensor:
    """``_fallback_box`` as a float32 tensor on ``device``, made once."""
    return device_constant(_fallback_box(height, width, ratio), device, torch.float32)


def _fallback_box(height: int, width: int, ratio: tuple[float, float]) -> tuple[int, int, int, int]:
    """RandomResizedCrop's box when no draw fits: the whole image, its ratio clamped into ``ratio``,
    centred (top, left, height, width)."""
    in_ratio = width / height
    if in_ratio < ratio[0]:
        w, h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        w, h = round(height * ratio[1]), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def random_resized_crop(
    x: torch.Tensor,
    size: tuple[int, int],
    generator: torch.Generator | None = None,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> torch.Tensor:
    """torchvision's RandomResizedCrop on every image of a batch, each with its own box (``resized_crop``)."""
    boxes = resized_crop_boxes(
        x.shape[0], x.shape[-2], x.shape[-1], generator, x.device, scale=scale, ratio=ratio
    )
    return resized_crop(x, boxes, size)


def centre_box(picture: tuple[int, int], size: Sequence[int]) -> tuple[float, float, float, float]:
    """The centre region (left, top, right, bottom) of a ``picture`` = (W, H) that has the aspect ratio of
    ``size`` = (H, W): all of its height or all of its width (Resize of the shorter side, then CenterCrop,
    as one region for ``resize_region``)."""
    w, h = picture
    aspect = size[1] / size[0]
    if w / h > aspect:  # wider: keep the height
        kept = h * aspect
        return ((w - kept) / 2, 0.0, (w + kept) / 2, float(h))
    kept = w / aspect
    return (0.0, (h - kept) / 2, float(w), (h + kept) / 2)


def resize_region(picture: torch.Tensor, region: Sequence[float], size: tuple[int, int]) -> torch.Tensor:
    """The one resize rule (storing a decoded picture at its size): a C×H×W uint8 picture's ``region``
    (left, top, right, bottom in pixels, rounded to whole ones and kept inside it) resized to ``size`` =
    (H, W) bilinearly **with antialiasing** (a photo shrinks many times here), as C×H×W uint8. On a CPU by
    torch's uint8 channels_last kernel (its fast path), elsewhere in float32, rounded: within one level."""
    h, w = picture.shape[-2:]
    left, top, right, bottom = (round(v) for v in region)
    left, top = min(max(left, 0), w - 1), min(max(top, 0), h - 1)
    right, bottom = min(max(right, left + 1), w), min(max(bottom, top + 1), h)
    window = picture[None, :, top:bottom, left:right]
    if tuple(window.shape[-2:]) == tuple(size):
        return window[0]
    if picture.device.type == "cpu":
        window = window.contiguous(memory_format=torch.channels_last)
        return F.interpolate(window, size, mode="bilinear", antialias=True, align_corners=False)[0]
    resized = F.interpolate(window.float(), size, mode="bilinear", antialias=True, align_corners=False)
    return resized[0].round_().clamp_(0, 255).to(torch.uint8)
