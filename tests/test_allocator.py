"""keep_freed_memory: glibc's malloc serves large blocks from its heap (reused after free) instead of fresh
mmaps, unless the user chose another allocator or tuning. Each case runs in a fresh interpreter: the
setting lasts for the life of a process."""

from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or ctypes.util.find_library("c") is None, reason="glibc only"
)

# a 64 MiB block: mmapped by glibc's defaults (hblkhd counts it), from the heap once the threshold is raised
PROBE = """
import ctypes
from zoo_core.allocator import keep_freed_memory

class Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
        "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Mallinfo2
libc.malloc.restype = ctypes.c_void_p
applied = keep_freed_memory()
again = keep_freed_memory()
block = libc.malloc(64 << 20)
print(applied, again, libc.mallinfo2().hblkhd >= (64 << 20))
"""


def probe(**env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "ZOO_MALLOC"}
    clean["LD_PRELOAD"] = ""
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return result.stdout.split()


def test_large_blocks_come_from_the_heap() -> None:
    assert probe() == ["True", "True", "False"]


@pytest.mark.parametrize(
    "env", [{"ZOO_MALLOC": "system"}, {"MALLOC_ARENA_MAX": "2"}, {"LD_PRELOAD": "libjemalloc.so.2"}]
)
def test_the_users_choice_of_allocator_wins(env: dict[str, str]) -> None:
    if "LD_PRELOAD" in env:  # a preload that is not there would only print a loader warning: keep it absent
        env = {**env, "LD_PRELOAD": "/nonexistent/libjemalloc.so.2"}
    applied, again, mmapped = probe(**env)
    assert (applied, again, mmapped) == ("False", "False", "True")
