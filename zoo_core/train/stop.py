"""Stopping a run on request: a scheduler's signal (SIGTERM, SIGUSR1) or Ctrl-C only sets a flag here; the
Trainer reads it at step boundaries (and between evaluation batches), saves once and exits with
``128 + signal number``, the code a shell reports for a process ended by that signal.

Under DDP every rank must stop at the same step, or one waits forever in the next gradient all-reduce. The
ranks agree with an all-reduce of their flags on a CPU (gloo) group, started without waiting at every step
and read one step later: a stop asked during step s is agreed after step s + 1 on every rank. The flag lives
on the host, so the agreement never waits for the device (an all-reduce of a CUDA flag read back each step
would be a host sync per step), and its round trip overlaps a whole step.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

import torch
import torch.distributed as dist

from zoo_core.errors import BadInputError
from zoo_core.train.config import DEFAULT_STOP_SIGNALS

T = TypeVar("T")


def parse_signals(text: str) -> tuple[str, ...]:
    """``"TERM,usr1"`` → ``("SIGTERM", "SIGUSR1")``; ``"none"`` → ``()``: every signal keeps its default."""
    if text.strip().lower() == "none":
        return ()
    names = []
    for part in filter(None, (p.strip().upper() for p in text.split(","))):
        name = part if part.startswith("SIG") else f"SIG{part}"
        if name in ("SIGKILL", "SIGSTOP") or not isinstance(getattr(signal, name, None), signal.Signals):
            raise BadInputError(f"--stop-signals: {part} is not a signal a process can catch")
        names.append(name)
    if not names:
        raise BadInputError("--stop-signals needs signal names (e.g. TERM,USR1,INT) or none")
    return tuple(dict.fromkeys(names))


class StopSignals:
    """Handlers that record the first of ``names`` received. A repeat while a save is under way is ignored
    (the save completes); a repeat at any other time gives up at once (KeyboardInterrupt), except under
    torchrun, whose agent forwards the terminal's Ctrl-C a second time and escalates to SIGKILL itself."""

    def __init__(self, names: Sequence[str] = DEFAULT_STOP_SIGNALS) -> None:
        self.signals = [getattr(signal, name) for name in names]
        self.signum: int | None = None
        self.saving = False
        self.give_up_on_repeat = "TORCHELASTIC_RUN_ID" not in os.environ

    def request(self, signum: int = signal.SIGINT) -> None:
        """Stop as if ``signum`` had arrived (for code: a callback, a test)."""
        if self.signum is None:
            self.signum = signum

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """The handlers in place for the duration (the main thread only: Python delivers signals there)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {signum: signal.signal(signum, self._handle) for signum in self.signals}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    @contextlib.contextmanager
    def saving_now(self) -> Iterator[None]:
        """A save that a repeated signal must not cut short."""
        self.saving = True
        try:
            yield
        finally:
            self.saving = False

    def _handle(self, signum: int, frame: Any) -> None:
        # no I/O here: the handler runs between two bytecodes of whatever the main thread was doing
        if self.signum is None:
            self.signum = signum
        elif self.give_up_on_repeat and not self.saving:
            raise KeyboardInterrupt


class StopAgreement:
    """Whether all ranks stop now. ``poll`` must be called at the same points on every rank (each step, each
    evaluation batch that every rank has); it answers the same on all of them."""

    def __init__(self, signals: StopSignals, *, distributed: bool) -> None:
        self.signals = signals
        # a group of its own: its collectives never interleave with DDP's, on CUDA it is still on the host
        self.group = dist.new_group(backend="gloo") if distributed else None
        self.pending: tuple[Any, torch.Tensor] | None = None
        self.signum = 0  # the agreed signal (the highest number any rank received): names it, sets the exit

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else "a stop request"

    def poll(self) -> bool:
        """True once a stop is agreed: at once alone; under DDP, at the poll after the one that saw it."""
        if self.group is None:
            self.signum = self.signals.signum or 0
            return bool(self.signum)
        if self.pending is not None:
            work, flag = self.pending
            work.wait()
            self.pending = None
            self.signum = int(flag.item())
            if self.signum:
                return True
        flag = torch.tensor([self.signals.signum or 0])
        self.pending = (dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self.group, async_op=True), flag)
        return False

    def now(self) -> bool:
        """A blocking agreement, for points outside the step loop (after set-up, at the end of the run)."""
        if self.poll():
            return True
        if self.group is None:
            return False
        work, flag = self.pending  # the all-reduce poll() just started
        work.wait()
        self.pending = None
        self.signum = int(flag.item())
        return bool(self.signum)

    def common_count(self, count: int) -> int:
        """The least ``count`` over the ranks (e.g. evaluation batches, which may differ by one)."""
        if self.group is None:
            return count
        least = torch.tensor([count])
        dist.all_reduce(least, op=dist.ReduceOp.MIN, group=self.group)
        return int(least)

    def until_stopped(self, batches: Iterable[T], common: int) -> Iterator[T]:
        """``batches``, with a poll before each of the first ``common``; StopAgreed once a stop is agreed."""
        for index, batch in enumerate(batches):
            if index < common and self.poll():
                raise StopAgreed
            yield batch


class StopAgreed(Exception):
    """All ranks agreed to stop inside an evaluation; the Trainer saves and ends the run."""
