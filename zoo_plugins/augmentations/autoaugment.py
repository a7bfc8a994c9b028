"""AutoAugment (Cubuk et al. 2019) per image on the device: each image draws one learned sub-policy."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from zoo_core.data.ops import device_constant
from zoo_plugins.augmentations._checks import check_num_classes, check_probability, require
from zoo_plugins.augmentations._policy import apply_policy, check_normalization, magnitudes
from zoo_plugins.augmentations._random import apply_mask
from zoo_plugins.augmentations.ops import OPS

BINS = 10  # the paper's magnitude scale, 0–9
# The published sub-policies as torchvision lists them: two (op, probability, magnitude bin) each; the bin
# of an op without a magnitude is 0 and unused.
POLICIES: dict[str, tuple[tuple[tuple[str, float, int], tuple[str, float, int]], ...]] = {
    "cifar10": (
        (("invert", 0.1, 0), ("contrast", 0.2, 6)),
        (("rotate", 0.7, 2), ("translate_x", 0.3, 9)),
        (("sharpness", 0.8, 1), ("sharpness", 0.9, 3)),
        (("shear_y", 0.5, 8), ("translate_y", 0.7, 9)),
        (("autocontrast", 0.5, 0), ("equalize", 0.9, 0)),
        (("shear_y", 0.2, 7), ("posterize", 0.3, 7)),
        (("color", 0.4, 3), ("brightness", 0.6, 7)),
        (("sharpness", 0.3, 9), ("brightness", 0.7, 9)),
        (("equalize", 0.6, 0), ("equalize", 0.5, 0)),
        (("contrast", 0.6, 7), ("sharpness", 0.6, 5)),
        (("color", 0.7, 7), ("translate_x", 0.5, 8)),
        (("equalize", 0.3, 0), ("autocontrast", 0.4, 0)),
        (("translate_y", 0.4, 3), ("sharpness", 0.2, 6)),
        (("brightness", 0.9, 6), ("color", 0.2, 8)),
        (("solarize", 0.5, 2), ("invert", 0.0, 0)),
        (("equalize", 0.2, 0), ("autocontrast", 0.6, 0)),
        (("equalize", 0.2, 0), ("equalize", 0.6, 0)),
        (("color", 0.9, 9), ("equalize", 0.6, 0)),
        (("autocontrast", 0.8, 0), ("solarize", 0.2, 8)),
        (("brightness", 0.1, 3), ("color", 0.7, 0)),
        (("solarize", 0.4, 5), ("autocontrast", 0.9, 0)),
        (("translate_y", 0.9, 9), ("translate_y", 0.7, 9)),
        (("autocontrast", 0.9, 0), ("solarize", 0.8, 3)),
        (("equalize", 0.8, 0), ("invert", 0.1, 0)),
        (("translate_y", 0.7, 9), ("autocontrast", 0.9, 0)),
    ),
    "imagenet": (
        (("posterize", 0.4, 8), ("rotate", 0.6, 9)),
        (("solarize", 0.6, 5), ("autocontrast", 0.6, 0)),
        (("equalize", 0.8, 0), ("equalize", 0.6, 0)),
        (("posterize", 0.6, 7), ("posterize", 0.6, 6)),
        (("equalize", 0.4, 0), ("solarize", 0.2, 4)),
        (("equalize", 0.4, 0), ("rotate", 0.8, 8)),
        (("solarize", 0.6, 3), ("equalize", 0.6, 0)),
        (("posterize", 0.8, 5), ("equalize", 1.0, 0)),
        (("rotate", 0.2, 3), ("solarize", 0.6, 8)),
        (("equalize", 0.6, 0), ("posterize", 0.4, 6)),
        (("rotate", 0.8, 8), ("color", 0.4, 0)),
        (("rotate", 0.4, 9), ("equalize", 0.6, 0)),
        (("equalize", 0.0, 0), ("equalize", 0.8, 0)),
        (("invert", 0.6, 0), ("equalize", 1.0, 0)),
        (("color", 0.6, 4), ("contrast", 1.0, 8)),
        (("rotate", 0.8, 8), ("color", 1.0, 2)),
        (("color", 0.8, 8), ("solarize", 0.8, 7)),
        (("sharpness", 0.4, 7), ("invert", 0.6, 0)),
        (("shear_x", 0.6, 5), ("equalize", 1.0, 0)),
        (("color", 0.4, 0), ("equalize", 0.6, 0)),
        (("equalize", 0.4, 0), ("solarize", 0.2, 4)),
        (("solarize", 0.6, 5), ("autocontrast", 0.6, 0)),
        (("invert", 0.6, 0), ("equalize", 1.0, 0)),
        (("color", 0.6, 4), ("contrast", 1.0, 8)),
        (("equalize", 0.8, 0), ("equalize", 0.6, 0)),
    ),
    "svhn": (
        (("shear_x", 0.9, 4), ("invert", 0.2, 0)),
        (("shear_y", 0.9, 8), ("invert", 0.7, 0)),
        (("equalize", 0.6, 0), ("solarize", 0.6, 6)),
        (("invert", 0.9, 0), ("equalize", 0.6, 0)),
        (("equalize", 0.6, 0), ("rotate", 0.9, 3)),
        (("shear_x", 0.9, 4), ("autocontrast", 0.8, 0)),
        (("shear_y", 0.9, 8), ("invert", 0.4, 0)),
        (("shear_y", 0.9, 5), ("solarize", 0.2, 6)),
        (("invert", 0.9, 0), ("autocontrast", 0.8, 0)),
        (("equalize", 0.6, 0), ("rotate", 0.9, 3)),
        (("shear_x", 0.9, 4), ("solarize", 0.3, 3)),
        (("shear_y", 0.8, 8), ("invert", 0.7, 0)),
        (("equalize", 0.9, 0), ("translate_y", 0.6, 6)),
        (("invert", 0.9, 0), ("equalize", 0.6, 0)),
        (("contrast", 0.3, 3), ("rotate", 0.8, 4)),
        (("invert", 0.8, 0), ("translate_y", 0.0, 2)),
        (("shear_y", 0.7, 6), ("solarize", 0.4, 8)),
        (("invert", 0.6, 0), ("rotate", 0.8, 4)),
        (("shear_y", 0.3, 7), ("translate_x", 0.9, 3)),
        (("shear_x", 0.1, 6), ("invert", 0.6, 0)),
        (("solarize", 0.7, 2), ("translate_y", 0.6, 7)),
        (("shear_y", 0.8, 4), ("invert", 0.8, 0)),
        (("shear_x", 0.7, 9), ("translate_y", 0.8, 3)),
        (("shear_y", 0.8, 5), ("autocontrast", 0.7, 0)),
        (("shear_x", 0.7, 2), ("invert", 0.1, 0)),
    ),
}


def _tables(policy: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(sub-policies, 2) op indices into OPS, probabilities and bins of a policy, once per device
    (``device_constant``)."""
    op, prob, bins = _rules(policy)
    return (
        device_constant(op, device, torch.int64),
        device_constant(prob, device, torch.float32),
        device_constant(bins, device, torch.float32),
    )


@functools.lru_cache(maxsize=8)
def _rules(policy: str) -> tuple[tuple[tuple[Any, ...], ...], ...]:
    """``_tables``' values as tuples, worked out once rather than every batch."""
    rules = POLICIES[policy]
    op = tuple(tuple(OPS.index(name) for name, _, _ in pair) for pair in rules)
    prob = tuple(tuple(p for _, p, _ in pair) for pair in rules)
    bins = tuple(tuple(float(b) for _, _, b in pair) for pair in rules)
    return op, prob, bins


@dataclass(frozen=True, kw_only=True)
class AutoAugment:
    """AutoAugment: each image draws one of the policy's 25 sub-policies, two ops with their probabilities.

    ``policy`` is cifar10, imagenet or svhn, torchvision's tables and magnitude ranges (10 bins); a signed
    magnitude is negated for half the images.
    """

    ops: ClassVar[tuple[str, ...]] = OPS  # the operations, in the order ``draw``'s op indices
    num_classes: int
    policy: str = "cifar10"
    p: float = 1.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        check_num_classes("autoaugment", self.num_classes)
        require(self.policy in POLICIES, "autoaugment", "policy", " or ".join(POLICIES), self.policy)
        check_probability("autoaugment", self.p)
        check_normalization("autoaugment", self.mean, self.std)

    def draw(
        self, n: int, size: tuple[int, int], device: torch.device, generator: torch.Generator | None
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The (op, magnitude) of every image for both steps of its sub-policy; op −1 where not applied."""
        ops, probs, bins = _tables(self.policy, device)
        applied = apply_mask(n, self.p, device, generator)
        sub = torch.randint(len(ops), (n,), device=device, generator=generator)
        steps = []
        for stage in range(2):
            op = ops[sub, stage]
            taken = torch.rand(n, device=device, generator=generator) <= probs[sub, stage]
            negate = torch.rand(n, device=device, generator=generator) <= 0.5
            magnitude = magnitudes("standard", OPS, op, bins[sub, stage], negate, BINS, size)
            steps.append((torch.where(applied & taken, op, -1), magnitude))
        return steps

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        steps = self.draw(x.shape[0], (x.shape[-2], x.shape[-1]), x.device, generator)
        return apply_policy(x, steps, self.ops, self.mean, self.std), y
