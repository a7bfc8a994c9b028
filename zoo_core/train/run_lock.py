"""One writer per run directory: an advisory lock (``flock``) on ``RUN/.lock``, held by the live process.

The kernel releases the lock when the holding process ends, however it ends (``kill -9`` included), so a
lock is never stale and nothing has to clean it up; the pid and host the holder writes into the file are
only for the message. On NFS (v4) Linux emulates ``flock`` with a lock the server holds, so two machines
sharing a run directory exclude each other too; Lustre needs its ``flock`` mount option.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import IO

from zoo_core.errors import BadInputError

try:
    import fcntl
except ImportError:  # Windows: no flock; a run directory is not guarded there
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"


class RunInUse(BadInputError):
    """Another live process trains in this run directory."""


class RunLock:
    """``acquire(run_dir)`` or RunInUse naming the holder; ``release()`` (or the process's end) lets it go."""

    def __init__(self) -> None:
        self.handle: IO[str] | None = None

    def acquire(self, run_dir: Path) -> None:
        if fcntl is None or self.handle is not None:
            return
        self.path = Path(run_dir) / LOCK_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115  (held open for the life of the run)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read()
            handle.close()
            raise RunInUse(
                f"{self.path.parent} is in use by {describe(holder)}; wait for it to end, or "
                "pick another --out"
            ) from None
        except OSError:  # a file system without locks: train unguarded rather than not at all
            handle.close()
            return
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}))
        handle.flush()
        self.handle = handle

    def release(self) -> None:
        if self.handle is not None:
            self.handle.close()  # closing the file drops the lock
            self.handle = None


def describe(holder: str) -> str:
    """``"pid 123 on host-a (since 2026-12-04 18:00:00)"`` from what the holder wrote."""
    try:
        facts = json.loads(holder)
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(facts["since"])))
        return f"pid {int(facts['pid'])} on {facts['host']} (since {since})"
    except (ValueError, TypeError, KeyError):  # written a moment ago and not yet flushed
        return "another process"
