"""Per-image operation kernels of the augmentation policies (AutoAugment, RandAugment, TrivialAugment).

Each kernel takes ``pixels``, a float32 batch (N, C, H, W) holding uint8 levels (whole numbers 0–255), and
``magnitude`` (N,), one value per image in torchvision's convention (the ``magnitude`` that
``_AutoAugmentBase._apply_image_or_video_transform`` receives: a shear coefficient, a shift in pixels, an
angle in degrees, an enhancement offset around 1, posterize bits, a solarize threshold as a fraction of 255),
and returns uint8 levels again: what ``torchvision.transforms.v2.functional`` gives for each uint8 image
alone. A kernel may overwrite ``pixels`` (the policies pass each a gathered copy). Working on whole-number
floats rather than on uint8 lets the geometric ops sample with
``grid_sample`` and the photometric ones blend without casts, while each uint8 cast of torchvision is
reproduced where it happens (truncation after a blend, rounding after a blur), so the meaning stays exact.

The quantities torchvision derives from a magnitude in Python doubles (1 + m, 1 − factor, thresholds, the
inverse affine matrices) are derived here in float64 too, then cast to float32 as torchvision's kernels
cast them, so the float32 arithmetic on the pixels is the same.

``apply_ops`` runs one drawn operation per image over a batch: each operation once, on the sub-batch that
drew it, and the five geometric operations together in one ``grid_sample``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from zoo_plugins.augmentations._batch import per_image

OPS = (
    "identity",
    "shear_x",
    "shear_y",
    "translate_x",
    "translate_y",
    "rotate",
    "brightness",
    "color",
    "contrast",
    "sharpness",
    "posterize",
    "solarize",
    "autocontrast",
    "equalize",
    "invert",
)
GEOMETRIC = ("shear_x", "shear_y", "translate_x", "translate_y", "rotate")
MAX = 255.0
# ITU-R 601-2 luma, torchvision's grayscale weights (contrast and colour blend towards it)
_LUMA = (0.2989, 0.587, 0.114)


def _wide(magnitude: torch.Tensor) -> torch.Tensor:
    """The magnitudes in float64 where the device has it (torchvision derives its factors in doubles)."""
    return magnitude.double() if magnitude.device.type in ("cpu", "cuda") else magnitude.float()


def _truncate(pixels: torch.Tensor) -> torch.Tensor:
    """Clamp to 0–255 and drop the fraction, in place: torchvision's ``clamp_(0, 255).to(torch.uint8)``."""
    return pixels.clamp_(0.0, MAX).trunc_()


def _blend(pixels: torch.Tensor, other: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``factor·pixels + (1 − factor)·other`` per image, truncated: torchvision's ``_blend`` on uint8."""
    wide = _wide(factor)
    ratio = per_image(wide.float(), pixels)
    rest = per_image((1.0 - wide).float(), pixels)
    # addcmul rounds once after the multiply-add, as torchvision's ``add_(other, alpha=…)`` does: a product
    # rounded first lands 1 level lower now and then, once truncated
    return _truncate(pixels.mul_(ratio).addcmul_(other, rest))


def _gray(pixels: torch.Tensor) -> torch.Tensor:
    """Luma (N, 1, H, W) floored to whole levels, in torchvision's order of operations (r·a + g·b + c·b)."""
    r, g, b = pixels.unbind(1)
    return r.mul(_LUMA[0]).add_(g, alpha=_LUMA[1]).add_(b, alpha=_LUMA[2]).floor_().unsqueeze(1)


# -- photometric --------------------------------------------------------------------------------------
# These work in place on ``pixels`` where they can: the policies hand each one a gathered copy, and on a
# CPU a fresh batch-sized tensor costs more than the arithmetic (its pages are faulted in on first touch).


def identity(pixels: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """The images unchanged."""
    return pixels


def brightness(pixels: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """Scale every level by 1 + magnitude (``adjust_brightness``)."""
    return _truncate(pixels.mul_(per_image((1.0 + _wide(magnitude)).float(), pixels)))


def color(pixels: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """Saturation: blend with the image's gray by factor 1 + magnitude (``adjust_saturation``)."""
    if pixels.shape[1] == 1:  # a gray image has no colour to change (torchvision, after PIL)
        return pixels
    return _blend(pixels, _gray(pixels), 1.0 + _wide(magnitude))


def contrast(pixels: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """Blend with the mean of the image's gray by factor 1 + magnitude (``adjust_contrast``)."""
    gray = _gray(pixels) if pixels.shape[1] == 3 else pixels
    return _blend(pixels, gray.mean((-3, -2, -1), keepdim=True), 1.0 + _wide(magnitude))


def sharpness(pixels: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """Blend with a smoothed copy by factor 1 + magnitude, border pixels kept (``adjust_sharpness``).

    The smoothing is PIL's SMOOTH filter (1s around a 5, over 13), rounded to whole levels. It is summed
    here as whole numbers (a 3×3 box sum plus 4 × the centre, exact in float32) and divided once: a sum of
    levels over 13 is never a half, so this rounds as torchvision's float convolution does, at a fraction of
    the cost of a grouped convolution.
    """
    h, w = pixels.shape[-2:]
    if h <= 2 or w <= 2:
        return pixels
    rows = torch.add(pixels[..., :-2, :], pixels[..., 1:-1, :]).add_(pixels[..., 2:, :])
    box = torch.add(rows[..., :-2], rows[..., 1:-1]).add_(rows[..., 2:])
    inner = pixels[..., 1:-1, 1:-1]
    smooth = box.add_(inner, alpha=4.0).div_(13.0).round_()
    rest = per_image((1.0 - (1.0 + _wide(magnitude))).float(), pixels)
    inner.addcmul_(smooth.sub_(inner), rest)  # one rounding, like torchvision's add_(…, alpha=…)
    return _truncate(pixels)


def posterize(pixels: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """Keep the top ``int(magnitude)`` bits of every level (``posterize``)."""
    bits = magnitude.trunc().clamp(0, 8)
    step = per_image(torch.exp2(8.0 - bits).float(), pixels)  # 2^(8 − bits): a power of two, exact
    return pixels.div_(step).floor_().mul_(step)


def solarize(pixels: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """Invert the levels at or above 255·magnitude (``solarize``)."""
    above = pixels >= per_image((MAX * _wide(magnitude)).float(), pixels)
    return torch.where(above, MAX - pixels, pixels, out=pixels)


def autocontrast(pixels: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """Stretch each channel's levels to 0–255; a flat channel stays as it is (``autocontrast``)."""
    low = pixels.amin((-2, -1), keepdim=True)
    high = pixels.amax((-2, -1), keepdim=True)
    flat = high == low
    # torchvision multiplies by 1/255 rather than divide by 255: the same float32 scale, bit for bit
    scale = torch.where(flat, 1.0, (high - low) * (1.0 / MAX))
    low = torch.where(flat, 0.0, low)
    return _truncate(pixels.sub_(low).div_(scale))


def equalize(pixels: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """Equalize each channel's histogram with PIL's look-up table (``equalize``).

    One histogram per image channel, all from one ``bincount`` over offset levels (channel k counts into
    bins 256·k …), and every table applied by one lookup at the same offsets. PIL's table:
    ``lut[v] = (cum[v − 1] + step // 2) // step`` with ``step`` the number of pixels not at the channel's
    highest level, over 255; a channel where ``step`` is 0 stays as it is.
    """
    n, c, h, w = pixels.shape
    planes = pixels.view(n * c, h * w)
    offsets = torch.arange(0, n * c * 256, 256, dtype=torch.int32, device=pixels.device).view(-1, 1)
    index = planes.to(torch.int32).add_(offsets).view(-1)
    hist = torch.bincount(index, minlength=n * c * 256).view(n * c, 256)
    cum = hist.cumsum(1)
    at_top = hist.gather(1, planes.amax(1, keepdim=True).long())
    step = torch.div(h * w - at_top, 255, rounding_mode="floor")
    lut = torch.div(cum[:, :-1] + step // 2, step.clamp(min=1), rounding_mode="floor").clamp_(0, 255)
    lut = torch.cat([torch.zeros_like(lut[:, :1]), lut], 1)
    identity_lut = torch.arange(256, device=pixels.device).expand_as(lut)
    lut = torch.where(step > 0, lut, identity_lut).to(pixels.dtype)
    return pixels.copy_(lut.view(-1).index_select(0, index).view_as(pixels))


def invert(pixels: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """255 − level (``invert``)."""
    return pixels.neg_().add_(MAX)


# -- geometric ----------------------------------------------------------------------------------------
# Each builds torchvision's inverse affine matrix (output pixel → input pixel, both about the image centre)
# per image, in float64 like ``_get_inverse_affine_matrix``; ``affine`` then samples them all at once.


def _matrices(m: torch.Tensor, *entries: torch.Tensor | float) -> torch.Tensor:
    """(N, 2, 3) float64 matrices from six entries, each an (N,) tensor like ``m`` or a number."""
    rows = [e if isinstance(e, torch.Tensor) else torch.full_like(m, e) for e in entries]
    return torch.stack(rows, -1).view(-1, 2, 3)


def _shear_x_matrix(magnitude: torch.Tensor, h: int, w: int) -> torch.Tensor:
    # torchvision shears by atan(m) degrees about the top-left corner: x_in = x + m·(y + h/2)
    m = _wide(magnitude)
    return _matrices(m, 1.0, m, m * (h / 2), 0.0, 1.0, 0.0)


def _shear_y_matrix(magnitude: torch.Tensor, h: int, w: int) -> torch.Tensor:
    m = _wide(magnitude)
    return _matrices(m, 1.0, 0.0, 0.0, m, 1.0, m * (w / 2))


def _translate_x_matrix(magnitude: torch.Tensor, h: int, w: int) -> torch.Tensor:
    # torchvision shifts by int(magnitude): whole pixels, the fraction dropped towards zero
    m = _wide(magnitude)
    return _matrices(m, 1.0, 0.0, -m.trunc(), 0.0, 1.0, 0.0)


def _translate_y_matrix(magnitude: torch.Tensor, h: int, w: int) -> torch.Tensor:
    m = _wide(magnitude)
    return _matrices(m, 1.0, 0.0, 0.0, 0.0, 1.0, -m.trunc())


def _rotate_matrix(magnitude: torch.Tensor, h: int, w: int) -> torch.Tensor:
    # counter-clockwise by the angle; torchvision takes the angle modulo 360 and inverts with −angle
    m = _wide(magnitude)
    radians = -torch.remainder(m, 360.0) * (math.pi / 180.0)
    cos, sin = torch.cos(radians), torch.sin(radians)
    return _matrices(m, cos, sin, 0.0, -sin, cos, 0.0)


_MATRICES: dict[str, Callable[[torch.Tensor, int, int], torch.Tensor]] = {
    "shear_x": _shear_x_matrix,
    "shear_y": _shear_y_matrix,
    "translate_x": _translate_x_matrix,
    "translate_y": _translate_y_matrix,
    "rotate": _rotate_matrix,
}


def affine(pixels: torch.Tensor, matrices: torch.Tensor) -> torch.Tensor:
    """Sample each image through its inverse affine matrix (N, 2, 3) in centred pixel coordinates.

    Nearest neighbour with 0 (black) outside, torchvision's defaults for the policies; the grid is made as
    torchvision's ``_affine_grid`` makes it (pixel-centre coordinates times the matrix, scaled by half the
    size), so a sample that lands between two pixels picks the same one.
    """
    h, w = pixels.shape[-2:]
    device = pixels.device
    # torchvision: theta divided by (w/2, h/2) in float32, then (x, y, 1) · theta per output pixel centre
    half = torch.tensor([0.5 * w, 0.5 * h], device=device).view(1, 1, 2)
    theta = matrices.to(device=device, dtype=torch.float32).transpose(1, 2) / half
    t_x, t_y, t_1 = (theta[:, k].view(-1, 1, 1, 2) for k in range(3))
    xs = torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, w, device=device).view(1, 1, w, 1)
    ys = torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, h, device=device).view(1, h, 1, 1)
    # the grid as broadcast multiply-adds rather than a batched matmul of 3-vectors, which is slow on CPU
    grid = torch.addcmul(t_1, xs, t_x) + ys * t_y
    return F.grid_sample(pixels, grid, mode="nearest", padding_mode="zeros", align_corners=False)


def _geometric_kernel(name: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    def kernel(pixels: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
        return affine(pixels, _MATRICES[name](magnitude, pixels.shape[-2], pixels.shape[-1]))

    kernel.__name__ = name
    kernel.__doc__ = f"{name.replace('_', ' ').capitalize()} by the magnitude (``affine``/``rotate``)."
    return kernel


shear_x = _geometric_kernel("shear_x")
shear_y = _geometric_kernel("shear_y")
translate_x = _geometric_kernel("translate_x")
translate_y = _geometric_kernel("translate_y")
rotate = _geometric_kernel("rotate")

Kernel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
KERNELS: dict[str, Kernel] = {name: globals()[name] for name in OPS}


def apply_ops(
    pixels: torch.Tensor, op: torch.Tensor, magnitude: torch.Tensor, ops: Sequence[str]
) -> torch.Tensor:
    """Apply to each image the operation it drew: ``ops[op[i]]`` with ``magnitude[i]`` (``op[i] < 0``: none).

    ``pixels`` is updated in place and returned. The images are sorted by operation (the geometric ones
    together), so one wait for the device (the counts) gives every operation its rows, rather than one
    wait per operation; each operation then runs once on a gathered copy of its rows, written back with
    ``index_copy_``.
    """
    h, w = pixels.shape[-2:]
    # groups: 0 none or identity (skipped), 1 geometric, then one per other operation
    others = [name for name in ops if name not in GEOMETRIC and name != "identity"]
    group_of = [0] + [
        1 if name in GEOMETRIC else 0 if name == "identity" else 2 + others.index(name) for name in ops
    ]
    group = _constant(tuple(group_of), op.device)[op + 1]
    counts = torch.bincount(group, minlength=2 + len(others)).tolist()
    order = torch.argsort(group, stable=True)
    start = counts[0]
    if counts[1]:  # the geometric images, each with the matrix of the op it drew
        rows = order[start : start + counts[1]]
        drawn, amount = op[rows], magnitude[rows]
        matrices = torch.zeros(len(rows), 2, 3, dtype=_wide(amount).dtype, device=amount.device)
        for k, name in enumerate(ops):
            if name in GEOMETRIC:
                chosen = (drawn == k).view(-1, 1, 1)
                matrices = torch.where(chosen, _MATRICES[name](amount, h, w), matrices)
        pixels.index_copy_(0, rows, affine(pixels.index_select(0, rows), matrices))
        start += counts[1]
    for name, count in zip(others, counts[2:], strict=True):
        if count:
            rows = order[start : start + count]
            pixels.index_copy_(0, rows, KERNELS[name](pixels.index_select(0, rows), magnitude[rows]))
            start += count
    return pixels


@functools.lru_cache(maxsize=32)
def _constant(values: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """A small int64 table, made once per device."""
    return torch.tensor(values, device=device)
