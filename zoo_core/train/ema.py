"""Weight averaging: an exponential moving average of the model that is evaluated and saved.

Written here rather than with ``torch.optim.swa_utils.AveragedModel`` because the runs need three things it
lacks: a decay that grows over the run (``decay × (step / total) ** warmup``: early weights are soon
forgotten), a "lookahead" mode that restarts the model from the average after each update (airbench's
recipe), and a plain state dict for exact resumption. Buffers (BatchNorm statistics) are averaged too.
Updates are foreach kernels on the device with a decay computed on the host: no synchronisation.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class WeightAverage:
    """``module`` holds the average of ``model``'s floating-point parameters and buffers."""

    def __init__(
        self, model: nn.Module, decay: float, *, every: int = 1, warmup: float = 0.0, lookahead: bool = False
    ) -> None:
        if not 0 <= decay < 1:
            raise ValueError(f"decay must be in [0, 1), not {decay}")
        self.decay, self.every, self.warmup, self.lookahead = decay, every, warmup, lookahead
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        pairs = list(zip(self.module.state_dict().values(), model.state_dict().values(), strict=True))
        # sorted once here: update() runs every few optimizer steps and only launches the kernels
        self.averaged = [a for a, _ in pairs if a.is_floating_point()]
        self.live = [b for a, b in pairs if a.is_floating_point()]
        self.counters = [(a, b) for a, b in pairs if not a.is_floating_point()]

    def decay_at(self, step: int, total_steps: int) -> float:
        """The decay of the update made after optimizer step ``step`` (1-based) of ``total_steps``."""
        return self.decay * (step / total_steps) ** self.warmup if self.warmup else self.decay

    @torch.no_grad()
    def update(self, step: int, total_steps: int) -> None:
        """After optimizer step ``step``: every ``every`` steps, average ← decay·average + (1−decay)·model."""
        if step % self.every:
            return
        torch._foreach_lerp_(self.averaged, self.live, 1.0 - self.decay_at(step, total_steps))
        for a, b in self.counters:  # integer buffers (BatchNorm's batch counter) follow the model
            a.copy_(b)
        if self.lookahead:
            torch._foreach_copy_(self.live, self.averaged)

    @torch.no_grad()
    def finish(self) -> None:
        """At the end of training a lookahead model takes the average (as its last update would)."""
        if self.lookahead:
            torch._foreach_copy_(self.live, self.averaged)

    def state_dict(self) -> dict[str, Any]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state)
