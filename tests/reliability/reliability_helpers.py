"""The zoo command line run in-process exactly as the ``zoo`` entry point runs it (``cli.main``: its error
handling and exit codes), under a time limit, and the rules every outcome must keep."""

from __future__ import annotations

import faulthandler
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch  # noqa: F401  (imported here, never under a command's time limit: an interrupted import breaks it)

ROOT = Path(__file__).resolve().parents[2]
EXIT_CODES = (0, 1, 2)


class Hang(BaseException):
    """Raised by the alarm when a command outlives its time limit (not an Exception: nothing catches it)."""


@dataclass
class Outcome:
    args: list[str]
    code: int
    out: str
    err: str
    seconds: float
    hung: bool = False
    crash: str = ""  # an exception that escaped cli.main, formatted

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith("Error:")]

    def problems(self, *, codes: Sequence[int] = EXIT_CODES, names: Sequence[str] = ()) -> list[str]:
        """What broke the rules: a hang, a traceback, an exit code outside ``codes``, a failure that is not
        exactly one ``Error:`` line or that came through the catch-all for unexpected exceptions, or an
        error line that names none of ``names``."""
        if self.hung:
            return [f"hung (killed after {self.seconds:.0f} s)"]
        found = []
        if self.crash:
            found.append(f"exception escaped: {self.crash.strip().splitlines()[-1]}")
        if "Traceback (most recent call last)" in self.out + self.err:
            found.append("printed a traceback")
        if self.code not in codes:
            found.append(f"exit code {self.code} (expected one of {list(codes)})")
        if self.code != 0:
            if len(self.error_lines) != 1:
                found.append(f"{len(self.error_lines)} 'Error:' lines on stderr: {self.err.strip()[-300:]!r}")
            elif "Error: unexpected " in self.error_lines[0]:
                found.append(f"reached the catch-all: {self.error_lines[0][:300]}")
            elif names and not any(name in self.error_lines[0] for name in names):
                found.append(f"the error names none of {list(names)}: {self.error_lines[0][:300]}")
        return found

    def summary(self) -> str:
        line = self.error_lines[0] if self.error_lines else (self.err.strip().splitlines() or [""])[-1]
        return f"exit {self.code}: {line[:200]}"


def invoke(args: Sequence[str], *, timeout: float = 300, env: dict[str, str] | None = None) -> Outcome:
    """Run ``zoo ARGS`` in this process through ``cli.main`` (what the ``zoo`` script calls) with click's
    CliRunner capturing the output; a run longer than ``timeout`` seconds is stopped and reported as hung.
    A hang inside C code, where the alarm cannot interrupt, ends the whole test session after three times
    the limit, tracebacks printed, rather than blocking CI forever."""
    from click.testing import CliRunner

    from zoo_core.cli import cli

    def on_alarm(signum: int, frame: object) -> None:
        raise Hang

    args = [str(a) for a in args]
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    faulthandler.dump_traceback_later(timeout * 3 + 30, exit=True)
    start = time.perf_counter()
    try:
        result = CliRunner().invoke(cli, args, env=env, catch_exceptions=True)
    except Hang:
        return Outcome(args, -1, "", "", time.perf_counter() - start, hung=True)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        faulthandler.cancel_dump_traceback_later()
    crash = ""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        crash = "".join(traceback.format_exception(result.exception))
    return Outcome(
        args, result.exit_code, result.stdout, result.stderr, time.perf_counter() - start, crash=crash
    )


def run_entry_point(
    args: Sequence[str], *, timeout: float = 120, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> Outcome:
    """Run the real ``zoo`` entry point (``python -m zoo_core``) in a fresh interpreter."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    full_env.update({"OMP_NUM_THREADS": "1", **(env or {})})
    args = [str(a) for a in args]
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "zoo_core", *args],
            capture_output=True,
            text=True,
            env=full_env,
            cwd=cwd,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return Outcome(args, -1, "", "", time.perf_counter() - start, hung=True)
    return Outcome(args, proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - start)


def memory_ceiling(extra_bytes: int) -> object:
    """A context manager capping this process's address space at its current size plus ``extra_bytes``,
    so that a crafted file that makes the loader allocate gigabytes fails with MemoryError here instead of
    pushing the machine out of memory."""
    import contextlib
    import resource

    @contextlib.contextmanager
    def cap():  # type: ignore[no-untyped-def]
        with open("/proc/self/status") as f:
            size = int(next(line for line in f if line.startswith("VmSize:")).split()[1]) * 1024
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = size + extra_bytes if hard == resource.RLIM_INFINITY else min(hard, size + extra_bytes)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        try:
            yield
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))

    return cap()
