"""Several optimizers stepped as one, for a run whose parameter groups name different optimizers.

``OptimizerSet.param_groups`` is the list of every member's groups — the same dicts, not copies — so a
learning-rate schedule, ``hold_finished_groups``, a GradScaler and ``zero_grad`` see and change every group
as they would one optimizer's. torch has no such container (its schedulers and GradScaler take one
``Optimizer``); Lightning and others keep a list and loop over it in the training step, which would make the
Trainer's step, schedule and checkpoint code branch on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch


class OptimizerSet(torch.optim.Optimizer):
    """``step()`` steps each member in order; the state dict holds each member's, in order."""

    def __init__(self, optimizers: Sequence[torch.optim.Optimizer]) -> None:
        if len(optimizers) < 2:
            raise ValueError("an OptimizerSet holds two or more optimizers")
        self.optimizers = list(optimizers)
        params = [p for opt in self.optimizers for g in opt.param_groups for p in g["params"]]
        super().__init__(params, {})  # the hooks and checks of torch's base class
        self.param_groups = [group for opt in self.optimizers for group in opt.param_groups]
        # the settings every member has (OneCycleLR cycles "momentum" or "betas" only where all groups do)
        common = set.intersection(*(set(opt.defaults) for opt in self.optimizers))
        self.defaults = {k: v for k, v in self.optimizers[-1].defaults.items() if k in common}

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for optimizer in self.optimizers:
            optimizer.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        return {"optimizers": [optimizer.state_dict() for optimizer in self.optimizers]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        states = state_dict.get("optimizers") if isinstance(state_dict, dict) else None
        if not isinstance(states, list) or len(states) != len(self.optimizers):
            raise ValueError(
                f"the saved optimizer state is not that of these {len(self.optimizers)} optimizers "
                f"({', '.join(type(o).__name__ for o in self.optimizers)})"
            )
        for optimizer, state in zip(self.optimizers, states, strict=True):
            optimizer.load_state_dict(state)
        # a member's load_state_dict replaces its group dicts: share the new ones
        self.param_groups = [group for opt in self.optimizers for group in opt.param_groups]

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        if hasattr(self, "optimizers") and self.param_groups:  # after __init__: a member must own it
            raise NotImplementedError("add a parameter group to one of OptimizerSet.optimizers")
        super().add_param_group(param_group)

    def __repr__(self) -> str:
        return "OptimizerSet(" + ", ".join(type(o).__name__ for o in self.optimizers) + ")"
