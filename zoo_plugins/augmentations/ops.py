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

``apply_sorted`` runs one drawn operation per image over a batch sorted by what its images drew
(``group_rows``): each operation once, on its contiguous slice, and the five geometric operations together
in one ``grid_sample``; ``apply_ops`` does the sorting and the writing back for an unsorted batch.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from zoo_core.data.ops import device_constant
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
Kernel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
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
    here as whole numbers (a 3×3 box sum plus 4 × the centre, exact in float32) and scaled once by 1/13: a
    sum of levels over 13 is never within 1/26 of a half, far beyond the scaling's rounding, so this rounds
    as torchvision's float convolution does, at a fraction of the cost of a grouped convolution. The sums
    run over each image plane flattened, a row being a shift by W and a column a shift by 1, so that every
    pass is contiguous; the pixels of the first and last column, which those shifts wrap across, keep
    their levels through a 0/1 mask on the change.
    """
    n, c, h, w = pixels.shape
    if h <= 2 or w <= 2:
        return pixels
    flat = pixels.contiguous().view(n, c, h * w)
    length = h * w
    rows = torch.add(flat[..., : length - 2 * w], flat[..., w : length - w]).add_(flat[..., 2 * w :])
    box = torch.add(rows[..., :-2], rows[..., 1:-1]).add_(rows[..., 2:])  # centred at w + 1 onwards
    inner = flat[..., w + 1 : length - w - 1]
    smooth = box.add_(inner, alpha=4.0).mul_(1.0 / 13.0).round_()
    change = smooth.sub_(inner).mul_(_interior(h, w, pixels.device))
    rest = (1.0 - (1.0 + _wide(magnitude))).float().view(-1, 1, 1)
    inner.addcmul_(change, rest)  # one rounding, like torchvision's add_(…, alpha=…)
    out = flat.view(n, c, h, w)
    return _truncate(pixels.copy_(out) if out.data_ptr() != pixels.data_ptr() else pixels)


@functools.lru_cache(maxsize=16)
def _interior(h: int, w: int, device: torch.device) -> torch.Tensor:
    """1 at the flattened positions w + 1 … h·w − w − 2 that are off the first and last column, else 0: a
    mask made per size and device (as long as the image: not one of ``device_constant``'s small tables)."""
    column = torch.arange(w + 1, h * w - w - 1, device=device) % w
    return ((column > 0) & (column < w - 1)).float()


def posterize(pixels: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """Keep the top ``int(magnitude)`` bits of every level (``posterize``)."""
    bits = magnitude.trunc().clamp(0, 8)
    step = per_image(torch.exp2(8.0 - bits).float(), pixels)  # 2^(8 − bits): a power of two, exact
    return pixels.div_(step).floor_().mul_(step)


def solarize(pixels: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
    """Invert the levels at or above 255·magnitude (``solarize``).

    A whole level is at or above the float32 threshold t exactly when it is at or above ceil(t), so
    ``above = clamp(level − ceil(t) + 1, 0, 1)`` is 1 or 0, and ``|level − 255·above|`` is the result: plain
    arithmetic, where a boolean mask and ``torch.where`` cost several times more on a CPU.
    """
    threshold = per_image((MAX * _wide(magnitude)).float().ceil_(), pixels)
    above = torch.sub(pixels, threshold).add_(1.0).clamp_(0.0, 1.0)
    return pixels.sub_(above.mul_(MAX)).abs_()


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

    One histogram per image channel, all from one count (``_histogram``) over offset levels (channel k
    counts into bins 256·k …), and every table applied by one lookup at the same offsets. PIL's table:
    ``lut[v] = (cum[v − 1] + step // 2) // step`` with ``step`` the number of pixels not at the channel's
    highest level, over 255; a channel where ``step`` is 0 stays as it is. The table is worked out in
    float64, exact for these whole numbers (below 2^53), where int64 division is not vectorized on a CPU.
    """
    n, c, h, w = pixels.shape
    offsets = torch.arange(0, n * c * 256, 256, dtype=torch.int32, device=pixels.device).view(n, c, 1, 1)
    index = pixels.to(torch.int32).add_(offsets).view(-1)  # pixels: contiguous (the policies' working copy)
    hist = _histogram(index, n * c * 256, _wide(magnitude).dtype).view(n * c, 256)
    before = hist.cumsum(1).sub_(hist)  # pixels below each level
    at_top = hist.gather(1, pixels.amax((-2, -1)).view(-1, 1).long())
    step = (h * w - at_top).div_(255).floor_()
    equal = step > 0
    lut = before.add_(step.div(2).floor_()).div_(step.clamp(min=1)).floor_().clamp_(0, MAX)
    # the lut, or the identity where step is 0: blended by 0/1 weights rather than a where over the table
    identity = torch.arange(256, dtype=lut.dtype, device=pixels.device)
    lut = lut.mul_(equal).addcmul_(identity, (~equal).to(lut.dtype))
    torch.index_select(lut.to(pixels.dtype).view(-1), 0, index, out=pixels.view(-1))
    return pixels


def _histogram(
    index: torch.Tensor, size: int, dtype: torch.dtype, *, bincount: bool | None = None
) -> torch.Tensor:
    """How many times each of 0 … size − 1 occurs in ``index`` (all below ``size``), as ``dtype``.

    ``bincount`` (default: on a CPU), where it is fastest (73 images: 0.18 ms, against 0.33 for
    ``index_add_``); on a GPU it reads the largest index back to the host to size its result, a wait for
    the device, so there the counts are added into a tensor of the known size. Whole counts add exactly in
    any order.
    """
    if bincount is None:
        bincount = index.device.type == "cpu"
    if bincount:
        return torch.bincount(index, minlength=size).to(dtype)
    ones = torch.ones((), dtype=dtype, device=index.device).expand(index.shape)
    return torch.zeros(size, dtype=dtype, device=index.device).index_add_(0, index, ones)


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
    half = device_constant((0.5 * w, 0.5 * h), device).view(1, 2, 1)
    theta = matrices.to(device=device, dtype=torch.float32) / half  # (N, 2 outputs, 3 coefficients)
    xs = torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, w, device=device).view(1, 1, 1, w)
    ys = torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, h, device=device).view(1, 1, h, 1)
    # as broadcast multiply-adds (N, 2, H, W), a plane per output coordinate, rather than a batched matmul
    # of 3-vectors (slow on a CPU) or arithmetic on the (N, H, W, 2) layout, whose innermost dimension is 2
    coefficient = theta.unsqueeze(-1).unsqueeze(-1)  # (N, 2, 3, 1, 1)
    grid = torch.addcmul(coefficient[:, :, 2], xs, coefficient[:, :, 0]) + ys * coefficient[:, :, 1]
    # grid_sample reads the grid through its strides: the (N, H, W, 2) view needs no copy
    return F.grid_sample(
        pixels, grid.permute(0, 2, 3, 1), mode="nearest", padding_mode="zeros", align_corners=False
    )


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

KERNELS: dict[str, Kernel] = {name: globals()[name] for name in OPS}


def group_rows(op: torch.Tensor, ops: Sequence[str]) -> tuple[torch.Tensor, list[int]]:
    """The images sorted by what they drew, and how many drew each: ``(order, counts)``.

    Group 0 holds the images that drew nothing (op < 0) or identity, group 1 the geometric operations
    (one ``grid_sample`` serves them all), then one group per other operation in the order of ``ops``.
    ``counts`` is the one wait for the device that gives every operation its rows.
    """
    others = _others(tuple(ops))
    group_of = [0] + [
        1 if name in GEOMETRIC else 0 if name == "identity" else 2 + others.index(name) for name in ops
    ]
    group = device_constant(tuple(group_of), op.device)[op + 1]
    counts = torch.bincount(group, minlength=2 + len(others)).tolist()
    return torch.argsort(group, stable=True), counts


def apply_sorted(
    pixels: torch.Tensor,
    op: torch.Tensor,
    magnitude: torch.Tensor,
    counts: Sequence[int],
    ops: Sequence[str],
    *,
    before: Callable[[torch.Tensor], torch.Tensor] | None = None,
    after: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Run each group's operation on its slice of ``pixels``, in place; ``pixels``, ``op`` and ``magnitude``
    are sorted by group (``group_rows``), so every slice is a contiguous run of images.

    ``before`` maps a slice to levels first and ``after`` maps the result on (both in place); the images
    that drew nothing go through both too, unless there are both, which would be a round trip. Working one
    slice at a time keeps the passes over the pixels in the CPU's cache.
    """
    h, w = pixels.shape[-2:]
    others = _others(tuple(ops))

    def run(start: int, count: int, kernel: Kernel | None) -> None:
        chunk = pixels.narrow(0, start, count)
        result = chunk if before is None else before(chunk)
        if kernel is not None:
            result = kernel(result, magnitude.narrow(0, start, count))
        if after is not None:
            result = after(result)
        if result is not chunk:
            chunk.copy_(result)

    if counts[0] and (before is None) != (after is None):
        run(0, counts[0], None)
    start = counts[0]
    if counts[1]:  # the geometric images, each with the matrix of the op it drew
        drawn, amount = op.narrow(0, start, counts[1]), magnitude.narrow(0, start, counts[1])
        matrices = _geometric_matrices(drawn, amount, ops, h, w)
        run(start, counts[1], lambda chunk, _: affine(chunk, matrices))
        start += counts[1]
    for name, count in zip(others, counts[2:], strict=True):
        if count:
            run(start, count, KERNELS[name])
            start += count
    return pixels


def apply_masked(
    pixels: torch.Tensor, op: torch.Tensor, magnitude: torch.Tensor, ops: Sequence[str]
) -> torch.Tensor:
    """Apply to each image the operation it drew, without a wait for the device: every operation runs on a
    copy of the whole batch and each image takes the result of its own (``op < 0``: none), the geometric
    ones through one ``affine`` with each image's matrix.

    The way for a GPU, where ``apply_sorted`` would read the group sizes back to the host (a sync on every
    training step, which stalls the queue of kernels the step has launched) and a whole-batch kernel costs
    little more than one on a slice. ``pixels`` (float32 levels, contiguous) is left as it is; the result
    equals ``apply_ops``'s, bit for bit.
    """
    h, w = pixels.shape[-2:]
    out = pixels
    geometric = [k for k, name in enumerate(ops) if name in GEOMETRIC]
    if geometric:
        moved = (op.view(-1, 1) == device_constant(tuple(geometric), op.device)).any(1)
        matrices = _geometric_matrices(op, magnitude, ops, h, w)
        out = torch.where(moved.view(-1, 1, 1, 1), affine(pixels, matrices), out)
    for k, name in enumerate(ops):
        if name not in GEOMETRIC and name != "identity":
            result = KERNELS[name](pixels.clone(), magnitude)
            out = torch.where((op == k).view(-1, 1, 1, 1), result, out)
    return out


def _geometric_matrices(
    op: torch.Tensor, magnitude: torch.Tensor, ops: Sequence[str], h: int, w: int
) -> torch.Tensor:
    """(N, 2, 3) each image's inverse affine matrix for the geometric op it drew (the identity where it
    drew another), for one ``affine`` over all of them."""
    unmoved = device_constant((1.0, 0.0, 0.0, 0.0, 1.0, 0.0), magnitude.device).to(_wide(magnitude).dtype)
    matrices = unmoved.view(1, 2, 3).expand(len(op), 2, 3)
    for k, name in enumerate(ops):
        if name in GEOMETRIC:
            matrices = torch.where((op == k).view(-1, 1, 1), _MATRICES[name](magnitude, h, w), matrices)
    return matrices


def apply_ops(
    pixels: torch.Tensor, op: torch.Tensor, magnitude: torch.Tensor, ops: Sequence[str]
) -> torch.Tensor:
    """Apply to each image the operation it drew: ``ops[op[i]]`` with ``magnitude[i]`` (``op[i] < 0``: none).

    ``pixels`` (float32 levels) is updated in place and returned: the images are gathered in group order,
    each operation runs once on its slice (``apply_sorted``), and the result is written back.
    """
    order, counts = group_rows(op, ops)
    if counts[0] == len(op):
        return pixels
    grouped = apply_sorted(pixels.index_select(0, order), op[order], magnitude[order], counts, ops)
    return pixels.index_copy_(0, order, grouped)


@functools.lru_cache(maxsize=32)
def _others(ops: tuple[str, ...]) -> list[str]:
    """The operations that have a group of their own: all but identity and the geometric ones."""
    return [name for name in ops if name not in GEOMETRIC and name != "identity"]
