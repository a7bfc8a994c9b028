"""Validation of augmentation options: a bad value is the user's to fix, so it is a BadInputError."""

from __future__ import annotations

from typing import Any

from zoo_core.errors import BadInputError


def require(ok: bool, aug: str, option: str, rule: str, value: Any) -> None:
    """Raise ``BadInputError`` naming the augmentation and the option unless ``ok``."""
    if not ok:
        raise BadInputError(f"Augmentation {aug!r}: option {option!r} must be {rule}, got {value!r}")


def check_probability(aug: str, p: float) -> None:
    require(0.0 <= p <= 1.0, aug, "p", "between 0 and 1", p)


def check_num_classes(aug: str, num_classes: int) -> None:
    require(num_classes >= 1, aug, "num_classes", "a positive integer", num_classes)
