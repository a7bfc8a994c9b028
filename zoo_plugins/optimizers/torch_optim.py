"""torch's own optimizers as zoo optimizer builders: ``builder(param_groups, *, lr, **options)``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


def sgd(
    param_groups: Iterable[Any],
    *,
    lr: float,
    momentum: float = 0.0,
    nesterov: bool = False,
    dampening: float = 0.0,
) -> torch.optim.SGD:
    """torch.optim.SGD; Nesterov only with momentum (torch refuses it without)."""
    return torch.optim.SGD(
        param_groups, lr=lr, momentum=momentum, dampening=dampening, nesterov=bool(nesterov and momentum)
    )


def adamw(
    param_groups: Iterable[Any],
    *,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    amsgrad: bool = False,
) -> torch.optim.AdamW:
    """torch.optim.AdamW."""
    return torch.optim.AdamW(param_groups, lr=lr, betas=(beta1, beta2), eps=eps, amsgrad=amsgrad)


def adam(
    param_groups: Iterable[Any],
    *,
    lr: float,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    amsgrad: bool = False,
) -> torch.optim.Adam:
    """torch.optim.Adam."""
    return torch.optim.Adam(param_groups, lr=lr, betas=(beta1, beta2), eps=eps, amsgrad=amsgrad)


def rmsprop(
    param_groups: Iterable[Any],
    *,
    lr: float,
    momentum: float = 0.0,
    alpha: float = 0.99,
    eps: float = 1e-8,
    centered: bool = False,
) -> torch.optim.RMSprop:
    """torch.optim.RMSprop."""
    return torch.optim.RMSprop(
        param_groups, lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered
    )
