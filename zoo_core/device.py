"""Choosing the device a command runs on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo_core.errors import BadInputError

if TYPE_CHECKING:
    import torch


def resolve_device(device: str) -> str:
    """``auto`` → cuda when available else cpu; ``cuda`` without CUDA is a bad-input error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BadInputError("--device cuda was asked for, but CUDA is not available on this machine")
    return device


def pick_precision(precision: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, whether a GradScaler is needed) for ``--precision`` on ``device``."""
    import torch

    if precision == "auto":
        if device.type != "cuda":
            return None, False
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return {"fp32": (None, False), "bf16": (torch.bfloat16, False), "fp16": (torch.float16, True)}[precision]
