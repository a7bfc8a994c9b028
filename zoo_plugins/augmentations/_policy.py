"""What the augmentation policies share: the round trip to uint8 levels, magnitude spaces and their draws.

The policies are defined on uint8 images, so the normalized batch is mapped back to its 0–255 levels (with
the data set's ``mean``/``std``; without them the batch is taken as [0, 1] pixels, and a uint8 batch is used
as it is), rounded to whole levels, run through the operations (``ops.apply_sorted`` on a CPU,
``ops.apply_masked`` elsewhere) and normalized again exactly as zoo's loaders normalize uint8 images. An
image that no operation changed is returned bit for bit as it came.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import torch

from zoo_core.data.ops import affine_for, device_constant
from zoo_plugins.augmentations._checks import require
from zoo_plugins.augmentations.ops import apply_masked, apply_sorted, group_rows

# op name → (magnitudes of `bins` bins for an H×W image, or None where the op has none; signed): the
# magnitude spaces of torchvision's RandAugment and AutoAugment (``standard``) and TrivialAugmentWide
# (``wide``). A signed magnitude is negated for half the images.
Space = dict[str, tuple[Callable[[int, int, int], torch.Tensor] | None, bool]]
# a policy's draws: one (op, magnitude) pair of (N,) tensors per step, op < 0 where an image draws nothing
Steps = Sequence[tuple[torch.Tensor, torch.Tensor]]


def _linspace(high: float) -> Callable[[int, int, int], torch.Tensor]:
    return lambda bins, h, w: torch.linspace(0.0, high, bins)


def _posterize_bits(spread: int) -> Callable[[int, int, int], torch.Tensor]:
    # 8 bits down to 8 − spread, unrounded here: a draw between two bins rounds after interpolating
    return lambda bins, h, w: 8 - torch.arange(bins) / ((bins - 1) / spread)


_SOLARIZE = (lambda bins, h, w: torch.linspace(1.0, 0.0, bins), False)
_NONE = (None, False)

STANDARD: Space = {
    "identity": _NONE,
    "shear_x": (_linspace(0.3), True),
    "shear_y": (_linspace(0.3), True),
    "translate_x": (lambda bins, h, w: torch.linspace(0.0, 150.0 / 331.0 * w, bins), True),
    "translate_y": (lambda bins, h, w: torch.linspace(0.0, 150.0 / 331.0 * h, bins), True),
    "rotate": (_linspace(30.0), True),
    "brightness": (_linspace(0.9), True),
    "color": (_linspace(0.9), True),
    "contrast": (_linspace(0.9), True),
    "sharpness": (_linspace(0.9), True),
    "posterize": (_posterize_bits(4), False),
    "solarize": _SOLARIZE,
    "autocontrast": _NONE,
    "equalize": _NONE,
    "invert": _NONE,
}
WIDE: Space = {
    **STANDARD,
    "shear_x": (_linspace(0.99), True),
    "shear_y": (_linspace(0.99), True),
    "translate_x": (_linspace(32.0), True),  # torchvision's fixed 32 pixels, whatever the image size
    "translate_y": (_linspace(32.0), True),
    "rotate": (_linspace(135.0), True),
    "brightness": (_linspace(0.99), True),
    "color": (_linspace(0.99), True),
    "contrast": (_linspace(0.99), True),
    "sharpness": (_linspace(0.99), True),
    "posterize": (_posterize_bits(6), False),
}


def _tables(
    space_name: str, ops: tuple[str, ...], bins: int, h: int, w: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(len(ops), bins) float32 magnitudes (0 where an op has none) and (len(ops),) bool signed, once per
    device (``device_constant``)."""
    table, signed = _table_values(space_name, ops, bins, h, w)
    return device_constant(table, device, torch.float32), device_constant(signed, device, torch.bool)


@functools.lru_cache(maxsize=32)
def _table_values(
    space_name: str, ops: tuple[str, ...], bins: int, h: int, w: int
) -> tuple[tuple[tuple[float, ...], ...], tuple[bool, ...]]:
    """``_tables``' values, as tuples (float32 values, exact as Python floats)."""
    space = {"standard": STANDARD, "wide": WIDE}[space_name]
    table = torch.zeros(len(ops), bins)
    signed = []
    for k, name in enumerate(ops):
        values, sign = space[name]
        signed.append(bool(sign))
        if values is not None:
            table[k] = values(bins, h, w)
    return tuple(tuple(row) for row in table.tolist()), tuple(signed)


def magnitudes(
    space: str,
    ops: Sequence[str],
    op: torch.Tensor,
    position: torch.Tensor,
    negate: torch.Tensor,
    bins: int,
    size: tuple[int, int],
) -> torch.Tensor:
    """Each image's magnitude (N,) for the op it drew (``op``, < 0: none) at its bin ``position`` (N,).

    A whole-number position is that bin's value exactly (torchvision's table entry); one in between is
    interpolated linearly, and posterize's bits are rounded after. Signed ops are negated where ``negate``.
    """
    table, signed = _tables(space, tuple(ops), bins, *size, position.device)
    row = op.clamp(min=0)
    low = position.floor().long().clamp(0, bins - 1)
    high = (low + 1).clamp(max=bins - 1)
    base = table[row, low]
    value = base + (position - low) * (table[row, high] - base)
    if "posterize" in ops:
        value = torch.where(op == list(ops).index("posterize"), value.round(), value)
    return torch.where(signed[row] & negate, -value, value)


def _normalization(
    mean: tuple[float, ...], std: tuple[float, ...], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(scale, shift) with ``uint8 · scale + shift`` the normalized image, as zoo's loaders compute it
    (``zoo_core.data.ops.affine_for``), and their inverse (255·std, 255·mean); (1, C, 1, 1) each, made once
    per device (``device_constant``) rather than copied every batch."""
    return tuple(  # type: ignore[return-value]
        device_constant(values, device, torch.float32).view(1, -1, 1, 1)
        for values in _normalization_values(mean, std)
    )


@functools.lru_cache(maxsize=16)
def _normalization_values(mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[tuple[float, ...], ...]:
    """``_normalization``'s four rows, computed in float32 as the loaders compute them (exact as floats)."""
    m = torch.tensor(mean, dtype=torch.float32)
    s = torch.tensor(std, dtype=torch.float32)
    return tuple(tuple(t.flatten().tolist()) for t in (*affine_for(m, s, "cpu"), 255.0 * s, 255.0 * m))


def levels_from(
    mean: Sequence[float] | None, std: Sequence[float] | None, device: torch.device
) -> Callable[[torch.Tensor], torch.Tensor]:
    """An in-place map from float32 images (normalized with mean/std, or [0, 1] pixels without them) to
    whole uint8 levels 0–255."""
    if mean is None or std is None:
        return lambda x: x.mul_(255.0).round_().clamp_(0.0, 255.0)
    *_, scale, shift = _normalization(tuple(mean), tuple(std), device)
    return lambda x: x.mul_(scale).add_(shift).round_().clamp_(0.0, 255.0)


def levels_to(
    mean: Sequence[float] | None, std: Sequence[float] | None, device: torch.device
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The inverse of ``levels_from``, in place: whole levels normalized exactly as zoo's loaders normalize
    uint8 images (a multiply, then an add)."""
    if mean is None or std is None:
        return lambda levels: levels.div_(255.0)
    scale, shift, *_ = _normalization(tuple(mean), tuple(std), device)
    return lambda levels: levels.mul_(scale).add_(shift)


def check_normalization(aug: str, mean: Sequence[float] | None, std: Sequence[float] | None) -> None:
    require((mean is None) == (std is None), aug, "mean", "given with std", mean)
    if std is not None:
        require(all(s > 0 for s in std), aug, "std", "positive", std)


# Off the CPU, the whole-batch way spares a training step its wait for the device (the GPU idles from the
# wait until the host has launched the next kernels) at the price of every operation's work on every image:
# ~70 passes over the batch, ~0.5 ms for 1,024 CIFAR images on an H100-class GPU by that count, and 10×
# more for 256 images of 224×224, where a ResNet-50 step takes ~90 ms and the wait a fraction of a
# millisecond. Past 2^23 elements (CIFAR batches up to 2,730; 224×224 up to 55) the work would outweigh the
# wait, so larger batches go by groups. An estimate from pass counts, not yet timed on a GPU
# (benchmarks/augmentation_policies.py times both ways; gpu_checks.sh step 09).
MASKED_MAX = 1 << 23


def apply_policy(
    x: torch.Tensor,
    steps: Steps,
    ops: Sequence[str],
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    *,
    grouped: bool | None = None,
) -> torch.Tensor:
    """Run the drawn ``steps`` in order, each an (op, magnitude) pair of (N,) tensors (op < 0: none).

    ``grouped`` runs each operation on the images that drew it (``_apply_grouped``), which reads the
    group sizes back to the host; otherwise every operation runs on the whole batch and each image keeps
    its own (``_apply_masked``), with no wait for the device. Both give the same batch, bit for bit. By
    default: grouped on a CPU, and on another device for batches of more than ``MASKED_MAX`` elements.
    """
    if not steps:
        return x.clone()
    if grouped is None:
        grouped = x.device.type == "cpu" or x.numel() > MASKED_MAX
    return (_apply_grouped if grouped else _apply_masked)(x, steps, ops, mean, std)


def _touched(steps: Steps, ops: Sequence[str]) -> torch.Tensor:
    """(N,) bool: the images that drew an operation other than identity in some step."""
    skip = ops.index("identity") if "identity" in ops else -1
    return torch.stack([(op >= 0) & (op != skip) for op, _ in steps]).any(0)


def _apply_masked(
    x: torch.Tensor,
    steps: Steps,
    ops: Sequence[str],
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
) -> torch.Tensor:
    """The policy on the whole batch at every step (``ops.apply_masked``): no host synchronisation."""
    levels = x.dtype == torch.uint8
    current = x.to(torch.float32, memory_format=torch.contiguous_format, copy=True)
    if not levels:
        current = levels_from(mean, std, x.device)(current)
    for op, magnitude in steps:
        current = apply_masked(current, op, magnitude, ops)
    if not levels:
        current = levels_to(mean, std, x.device)(current)
    out = torch.empty_like(x)  # x's memory format; an image no step changed is taken as it came
    return torch.where(_touched(steps, ops).view(-1, 1, 1, 1), current.to(x.dtype), x, out=out)


def _apply_grouped(
    x: torch.Tensor,
    steps: Steps,
    ops: Sequence[str],
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
) -> torch.Tensor:
    """The policy one operation at a time on the images that drew it.

    Each step gathers the batch in the order of what its images drew (``group_rows``), so that every
    operation works on one contiguous slice; the first step maps each slice to levels as it goes, the last
    maps them back, and one last gather restores the images' order (in ``x``'s memory format). A float32
    batch is worked on as it is; a uint8 one, or another float type, in float32 levels, cast at the end.
    An image that only drew identity or nothing is returned exactly as it came, not round-tripped.
    """
    levels = x.dtype == torch.uint8
    current = x if x.dtype == torch.float32 else x.float()
    position: torch.Tensor | None = None  # image i is at current[position[i]]; None: at i
    for k, (op, magnitude) in enumerate(steps):
        order, counts = group_rows(op, ops)
        # the working copy is contiguous whatever ``x``'s layout: per-channel arithmetic on channels_last
        # broadcasts along the innermost dimension (3 wide), several times slower on a CPU
        grouped = torch.empty(current.shape, dtype=current.dtype, device=current.device)
        torch.index_select(current, 0, order if position is None else position[order], out=grouped)
        apply_sorted(
            grouped,
            op[order],
            magnitude[order],
            counts,
            ops,
            before=None if levels or k > 0 else levels_from(mean, std, x.device),
            after=None if levels or k < len(steps) - 1 else levels_to(mean, std, x.device),
        )
        current, position = grouped, torch.empty_like(order)
        position[order] = torch.arange(len(order), device=order.device)
    if len(steps) > 1 and not levels:  # images no step changed went there and back: take them as they came
        kept = (~_touched(steps, ops)).nonzero().squeeze(1)
        if len(kept):  # into the contiguous working copy, before the one gather that restores x's layout
            current.index_copy_(0, position[kept], x.index_select(0, kept).to(current.dtype))
    out = torch.index_select(current, 0, position, out=torch.empty_like(x, dtype=current.dtype))
    return out if out.dtype == x.dtype else out.to(x.dtype)
