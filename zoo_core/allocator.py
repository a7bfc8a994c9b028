"""Keep freed memory in the process on a CPU, so each training step does not page-fault its tensors anew.

glibc's malloc hands every block above its mmap threshold (128 KiB, rising to at most 32 MiB as blocks are
freed) to a fresh ``mmap`` and unmaps it on ``free``. A CPU train step allocates and frees activations of
tens to hundreds of MB (fastnet at batch 1,024: 134 MB for one 64-channel bf16 map), so every step makes the
kernel zero those pages again: on a 2-core AMX Xeon a third of fastnet's training time was system time. With
the threshold raised and trimming off, freed blocks stay in the heap and are reused: the bare fastnet step
ran 1,019 → 1,243 img/s and ``zoo train cifar10 fastnet`` 846 → 1,156 img/s
(benchmarks/results/cpu-allocator-amx.md). It is what PyTorch's CPU tuning guides get by preloading
jemalloc or tcmalloc, done here with glibc's own ``mallopt`` so nothing has to be installed or preloaded.

The price: the process keeps its peak heap until it exits rather than returning freed blocks to the
system. A training process reaches that peak every step anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

MMAP_THRESHOLD = 1 << 30  # blocks up to 1 GiB come from the heap, so they are reused after free
TOP_PAD = 256 << 20  # grow the heap 256 MiB at a time rather than a page at a time
TRIM_THRESHOLD = (1 << 31) - 1  # mallopt takes an int: never give the heap's top back (2 GiB - 1)
_DONE: list[bool] = []  # whether keep_freed_memory already ran in this process (its outcome)


def keep_freed_memory() -> bool:
    """Set glibc's malloc to keep and reuse freed blocks (see the module's doc); True when it did.

    A no-op, returning False, off Linux, with another C library, when the user tunes malloc through
    ``MALLOC_*`` variables or preloads another allocator (their choice wins), or with ``ZOO_MALLOC=system``.
    Runs once per process.
    """
    if _DONE:
        return _DONE[0]
    _DONE.append(_apply())
    return _DONE[0]


def _apply() -> bool:
    if not sys.platform.startswith("linux") or os.environ.get("ZOO_MALLOC") == "system":
        return False
    if any(key.startswith("MALLOC_") for key in os.environ) or "malloc" in os.environ.get("LD_PRELOAD", ""):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return all(
        mallopt(param, value) == 1
        for param, value in (
            (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
            (M_TOP_PAD, TOP_PAD),
            (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        )
    )
