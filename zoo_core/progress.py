"""Progress of the long waits outside the training steps, and the heartbeat that keeps a log alive.

A phase (listing a tree, decoding it, channel statistics, data-init, evaluation, an export, a benchmark's
warm-up) is a tqdm bar on a terminal. When stderr is not a terminal (a scheduler, nohup, CI) it is a line
once the phase has run ``QUIET`` seconds, then at least one every ``INTERVAL`` seconds, and a last line when
it ends: the phase, done/total, the rate, elapsed time and ETA. A phase that ends sooner says nothing.

One daemon thread, the heartbeat, looks once a second at the innermost running reporter (a phase, or the
training progress of an epoch) and lets it write when nothing has been written for ``INTERVAL`` seconds, so a
log never falls silent inside one long call: a 45-second step, a data-dependent init, a model download.
Only rank 0 of a distributed run reports (``RANK`` unset or 0).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

from zoo_core.data.memory import human_bytes

T = TypeVar("T")

INTERVAL = 30.0  # seconds between lines when stderr is not a terminal
QUIET = 2.0  # a phase shorter than this says nothing
BEAT = 1.0  # seconds between the heartbeat's looks


class Reporter(Protocol):
    def note(self, detail: str) -> None:
        """Say what the phase is on now (a bar's postfix; the end of a line)."""
        self.detail = detail
        if self.bar is not None:
            self.bar.set_postfix_str(detail)

    def beat(self) -> None:
        """Called about once a second by the heartbeat: write a line if one is due (by its own clock)."""


_active: list[Reporter] = []  # the reporters now running, innermost last
_lock = threading.RLock()  # one line at a time, and the list above, between the loop and the heartbeat
_last_output = [0.0]  # when any reporter last wrote a line (monotonic seconds)
_heartbeat: threading.Thread | None = None


def is_main_process() -> bool:
    """Rank 0 of a torchrun job, or a process outside one: the one that reports."""
    return os.environ.get("RANK", "0") == "0"


def enter(reporter: Reporter) -> None:
    """Make ``reporter`` the innermost one the heartbeat serves (until ``leave``)."""
    global _heartbeat
    with _lock:
        _active.append(reporter)
        if _heartbeat is None or not _heartbeat.is_alive():
            _heartbeat = threading.Thread(target=_beat_forever, name="zoo-heartbeat", daemon=True)
            _heartbeat.start()


def leave(reporter: Reporter) -> None:
    with _lock:
        if reporter in _active:
            _active.remove(reporter)


def heartbeat() -> None:
    """One beat: the innermost running reporter writes if a line is due (the thread calls this)."""
    with _lock:
        if _active:
            _active[-1].beat()


def _beat_forever() -> None:
    while True:
        time.sleep(BEAT)
        try:
            heartbeat()
        except Exception:  # a closed stream at interpreter exit: the heartbeat must never kill the run
            return


def write_line(text: str, now: float, file: Any = None) -> None:
    """Write one progress line (on stderr by default); the heartbeat waits ``INTERVAL`` from the latest."""
    with _lock:  # the heartbeat thread and the loop never write into each other's line
        print(text, file=file or sys.stderr, flush=True)
        _last_output[0] = now


def last_output() -> float:
    return _last_output[0]


def beat_due(now: float, since: float, interval: float) -> bool:
    """Whether the heartbeat must write now: one look (``BEAT``) early, so that the gap between lines
    never passes ``interval`` however the looks fall."""
    return now - max(since, last_output()) >= interval - BEAT


def clock_text(seconds: float) -> str:
    """h:mm:ss, or m:ss under an hour."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Phase:
    """Progress of one named phase of ``total`` items (None: unknown); a context manager.

    ``update(n)`` counts finished items. On a terminal a tqdm bar, shown once the phase has run ``quiet``
    seconds; otherwise timed lines (see the module). ``enabled=None``: only the main process reports.
    ``heartbeat=None``: the heartbeat serves the phase unless a ``clock`` is given (a test's, which the
    heartbeat thread must not race); a test calls ``beat()`` itself.
    """

    def __init__(
        self,
        name: str,
        total: int | None = None,
        *,
        unit: str = "img",
        enabled: bool | None = None,
        interactive: bool | None = None,
        file: Any = None,
        quiet: float | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        heartbeat: bool | None = None,
    ) -> None:
        self.name, self.total, self.unit, self.file, self.clock = name, total, unit, file, clock
        self.quiet = QUIET if quiet is None else quiet
        self.interval = INTERVAL if interval is None else interval
        self.enabled = is_main_process() if enabled is None else enabled
        stream = file or sys.stderr
        self.interactive = stream.isatty() if interactive is None else interactive
        self.done = 0
        self.detail = ""  # what the phase is on now ("resnet18 train"), shown after the count
        self.started = clock()
        self.last_line: float | None = None  # when this phase last wrote; None: not yet
        self.closed = False
        self.bar = None
        if self.enabled and self.interactive:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                desc=name,
                unit=unit,
                unit_scale=unit == "B",
                unit_divisor=1024,
                delay=self.quiet,
                leave=False,
                dynamic_ncols=True,
                file=stream,
            )
        self.heartbeat = self.enabled and (clock is time.monotonic if heartbeat is None else heartbeat)
        if self.heartbeat:
            enter(self)

    def __enter__(self) -> Phase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(finished=exc[0] is None)

    def update(self, n: int = 1) -> None:
        with _lock:
            self.done += n
            if self.bar is not None:
                self.bar.update(n)
            elif self.enabled and self._due(self.clock()):
                self.write()

    def note(self, detail: str) -> None:
        """Say what the phase is on now (a bar's postfix; the end of a line)."""
        self.detail = detail
        if self.bar is not None:
            self.bar.set_postfix_str(detail)

    def beat(self) -> None:
        if self.bar is not None:
            self.bar.refresh()  # the elapsed time moves on even while no item finishes
        elif self.enabled and self._due(self.clock(), beat=True):
            self.write()

    def _due(self, now: float, beat: bool = False) -> bool:
        if self.last_line is None:
            return now - self.started >= self.quiet
        if beat:
            return beat_due(now, self.last_line, self.interval)
        return now - self.last_line >= self.interval

    def close(self, finished: bool = True) -> None:
        """End the phase; when it wrote lines, a last one says it is done (and how long it took)."""
        if self.closed:
            return
        self.closed = True
        leave(self)
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and self.last_line is not None and finished:
            self.write(end=True)

    def write(self, end: bool = False) -> None:
        now = self.clock()
        elapsed = now - self.started
        amount = human_bytes if self.unit == "B" else "{:,}".format
        count = f"{amount(self.done)}/{amount(self.total)}" if self.total else amount(self.done)
        count += "" if self.unit == "B" else f" {self.unit}"
        if end:
            text = f"{count if self.done else 'done'} in {clock_text(elapsed)}"
        else:
            rate = self.done / elapsed if elapsed > 0 else 0.0
            parts = [count] if self.total or self.done else []
            if self.done:
                parts.append(f"{human_bytes(rate)}/s" if self.unit == "B" else f"{rate:,.1f} {self.unit}/s")
            parts.append(f"elapsed {clock_text(elapsed)}")
            if self.total and rate:
                parts.append(f"ETA {clock_text((self.total - self.done) / rate)}")
            text = "  ".join(parts)
            if self.detail:
                text += f"  ({self.detail})"
        self.last_line = now
        write_line(f"zoo: {self.name}: {text}", now, self.file)


def track(items: Iterable[T], name: str, total: int | None = None, **options: Any) -> Iterator[T]:
    """Yield ``items``, counting each one as done in a ``Phase`` named ``name``."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Phase(name, total, **options) as phase:
        for item in items:
            yield item
            phase.update(1)
