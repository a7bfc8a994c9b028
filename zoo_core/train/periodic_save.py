"""Mid-epoch checkpoints every N steps or every T minutes (``--save-every``), written in the background.

At a step boundary the training state is copied to host memory (the only stall: the copy), then a thread
writes it as last.pt while training goes on; the epoch's own save waits for that write first. One write at a
time, so a slow disk delays the next snapshot rather than queueing copies. A failed write is raised in the
training thread at the next step.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

import torch

from zoo_core.errors import BadInputError

UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_interval(text: str) -> tuple[int, float]:
    """``"500"`` → (500 steps, 0); ``"10m"`` → (0, 600 s); ``"off"`` or ``"0"`` → (0, 0)."""
    text = str(text).strip().lower()
    if text in ("off", "0", "none"):
        return 0, 0.0
    if text.isdigit():
        return int(text), 0.0
    found = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smh])", text)
    if not found or float(found.group(1)) <= 0:
        raise BadInputError(f"--save-every takes steps (500), a time (30s, 10m, 1h) or off, not {text!r}")
    return 0, float(found.group(1)) * UNITS[found.group(2)]


def host_copy(value: Any) -> Any:
    """``value`` with every tensor copied to fresh CPU memory: a snapshot the next step cannot change."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: host_copy(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(host_copy(item) for item in value)
    return value


class PeriodicSaver:
    """When a snapshot is due, and the one background write at a time."""

    def __init__(self, every: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.steps, self.seconds = parse_interval(every)
        self.clock = clock
        self.last = clock()
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.steps or self.seconds)

    def due(self, step: int) -> bool:
        """Whether a snapshot is due after optimizer step ``step``; raises a failed write's error."""
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        if self.steps:
            return step % self.steps == 0
        return bool(self.seconds) and self.clock() - self.last >= self.seconds

    def submit(self, write: Callable[[], None]) -> None:
        """Run ``write`` in a thread, after the previous write has finished."""
        self.wait()
        self.last = self.clock()
        self.thread = threading.Thread(target=self._run, args=(write,), name="zoo-checkpoint", daemon=True)
        self.thread.start()

    def wait(self) -> None:
        """Let the write under way finish; raise its error, if it failed."""
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def _run(self, write: Callable[[], None]) -> None:
        try:
            write()
        except BaseException as err:  # handed to the training thread, which reports it
            self.error = err
