"""Muon (Jordan et al. 2024): SGD momentum whose update is orthogonalized by Newton–Schulz iterations.

torch ships ``torch.optim.Muon`` for 2-D parameters; the builder returns it where it fits. zoo's own
``Muon`` is the same update for the rest: a convolution's filters (O, I, kH, kW) are orthogonalized as the
O × (I·kH·kW) matrix, the iterations' dtype is a choice, and ``normalize`` rescales each weight to norm
sqrt(O) before its step, as airbench94_muon does for conv filters that a BatchNorm follows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

# the quintic iteration's coefficients (Jordan et al.), chosen for the steepest slope at zero: a few steps
# bring every singular value into roughly [0.7, 1.2], which trains as well as exact orthogonalization
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64}
ADJUST_LR = ("original", "match_rms_adamw", "none")


def orthogonalize(
    matrix: torch.Tensor, steps: int, dtype: torch.dtype = torch.bfloat16, eps: float = 1e-7
) -> torch.Tensor:
    """An approximately orthogonal matrix with ``matrix``'s singular vectors (U·S'·Vᵀ, S' ≈ 1), in ``dtype``.

    Written as torch.optim.Muon's own iteration (norm clamped at ``eps``, fused multiply-adds), so on 2-D
    weights zoo's Muon and torch's take the same step."""
    a, b, c = NS_COEFFICIENTS
    x = matrix.to(dtype)
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    x = x / x.norm().clamp(min=eps)  # spectral norm ≤ Frobenius norm ≤ 1: inside the iteration's range
    for _ in range(steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if tall else x


def lr_scale(shape: torch.Size, adjust: str) -> float:
    """The learning-rate factor for a weight of ``shape`` as an O × (I·…) matrix."""
    rows, cols = shape[0], math.prod(shape[1:])
    if adjust == "original":  # Muon's first form: tall matrices take larger steps
        return math.sqrt(max(1.0, rows / cols))
    if adjust == "match_rms_adamw":  # Moonlight (Liu et al. 2025): the update's RMS of AdamW's, ~0.2
        return 0.2 * math.sqrt(max(rows, cols))
    return 1.0


class Muon(torch.optim.Optimizer):
    """Muon for parameters of two or more dimensions (matrices, convolution filters)."""

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 0.02,
        momentum: float = 0.95,
        nesterov: bool = True,
        weight_decay: float = 0.0,
        ns_steps: int = 5,
        ns_dtype: str = "bfloat16",
        normalize: bool = False,
        adjust_lr: str = "original",
        eps: float = 1e-7,
    ) -> None:
        if ns_dtype not in DTYPES:  # kept by name: a checkpoint holds plain values only
            raise ValueError(f"ns_dtype must be one of {', '.join(DTYPES)}, got {ns_dtype!r}")
        check_options(lr=lr, momentum=momentum, ns_steps=ns_steps, adjust_lr=adjust_lr)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "nesterov": nesterov,
            "weight_decay": weight_decay,
            "ns_steps": ns_steps,
            "ns_dtype": ns_dtype,
            "normalize": normalize,
            "adjust_lr": adjust_lr,
            "eps": eps,
        }
        super().__init__(params, defaults)
        for group in self.param_groups:
            for param in group["params"]:
                if param.ndim < 2:
                    raise ValueError(
                        "Muon takes weights of two or more dimensions (matrices, convolution filters), "
                        f"not a tensor of shape {tuple(param.shape)}: give biases and norms another optimizer"
                    )

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, momentum = group["lr"], group["momentum"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(param.grad)
                buf = state["momentum_buffer"]
                buf.lerp_(param.grad, 1 - momentum)
                update = param.grad.lerp(buf, momentum) if group["nesterov"] else buf
                matrix = update.reshape(len(update), -1)
                update = orthogonalize(matrix, group["ns_steps"], DTYPES[group["ns_dtype"]], group["eps"])
                if group["normalize"]:
                    param.mul_(math.sqrt(len(param)) / param.norm().clamp(min=group["eps"]))
                param.mul_(1 - lr * group["weight_decay"])
                scale = lr_scale(param.shape, group["adjust_lr"])
                param.add_(update.reshape(param.shape).to(param.dtype), alpha=-lr * scale)
        return loss


def check_options(*, lr: float, momentum: float, ns_steps: int, adjust_lr: str) -> None:
    """ValueError for an option torch.optim.Muon or zoo's Muon would misuse."""
    if lr < 0:
        raise ValueError(f"lr must be ≥ 0, got {lr}")
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    if not 1 <= ns_steps < 100:
        raise ValueError(f"ns_steps must be in 1–99, got {ns_steps}")
    if adjust_lr not in ADJUST_LR:
        raise ValueError(f"adjust_lr must be one of {', '.join(ADJUST_LR)}, got {adjust_lr!r}")


def muon(
    param_groups: Iterable[Any],
    *,
    lr: float,
    momentum: float = 0.95,
    nesterov: bool = True,
    ns_steps: int = 5,
    ns_dtype: str = "bfloat16",
    normalize: bool = False,
    adjust_lr: str = "original",
    eps: float = 1e-7,
) -> torch.optim.Optimizer:
    """torch.optim.Muon where every parameter is 2-D and its options suffice, else zoo's Muon."""
    if ns_dtype not in DTYPES:
        raise ValueError(f"ns_dtype must be one of {', '.join(DTYPES)}, got {ns_dtype!r}")
    check_options(lr=lr, momentum=momentum, ns_steps=ns_steps, adjust_lr=adjust_lr)
    groups = list(param_groups)
    tensors = [p for g in groups for p in (g["params"] if isinstance(g, dict) else [g])]
    torch_fits = (
        hasattr(torch.optim, "Muon")
        and all(p.ndim == 2 for p in tensors)
        and ns_dtype == "bfloat16"
        and not normalize
        and adjust_lr != "none"
    )
    if torch_fits:
        return torch.optim.Muon(
            groups,
            lr=lr,
            weight_decay=0.0,
            momentum=momentum,
            nesterov=nesterov,
            ns_steps=ns_steps,
            eps=eps,
            adjust_lr_fn=adjust_lr,
        )
    return Muon(
        groups,
        lr=lr,
        momentum=momentum,
        nesterov=nesterov,
        ns_steps=ns_steps,
        ns_dtype=ns_dtype,
        normalize=normalize,
        adjust_lr=adjust_lr,
        eps=eps,
    )
