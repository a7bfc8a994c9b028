"""Choosing the device a command runs on."""

from __future__ import annotations

from zoo_core.errors import BadInputError


def resolve_device(device: str) -> str:
    """``auto`` → cuda when available else cpu; ``cuda`` without CUDA is a bad-input error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BadInputError("--device cuda was asked for, but CUDA is not available on this machine")
    return device
