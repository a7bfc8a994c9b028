"""One-line notices on stderr said once per process: what a data set decided (its size, its crop, its
memory plan) is worth a line the first time, not on every split or epoch that asks again."""

from __future__ import annotations

import sys
from collections.abc import Hashable

_SAID: set[Hashable] = set()


def say_once(key: Hashable, line: str) -> bool:
    """Print ``line`` on stderr unless ``key`` was said before in this process; whether it printed."""
    if key in _SAID:
        return False
    _SAID.add(key)
    print(line, file=sys.stderr, flush=True)
    return True


def forget() -> None:
    """Say everything again (for tests that read the notices of a fresh process)."""
    _SAID.clear()
