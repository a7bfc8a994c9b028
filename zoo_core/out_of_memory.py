"""Out of memory, said in one line: what ran out, where, how much was asked for and free, what to change.

PyTorch reports a host allocation that fails as ``RuntimeError: [enforce fail at alloc_cpu.cpp:…]
DefaultCPUAllocator: can't allocate memory: you tried to allocate N bytes``, a GPU one as
``torch.OutOfMemoryError`` (``torch.cuda.OutOfMemoryError``), and Python and NumPy as ``MemoryError``.
``memory_error`` turns any of them into an ``OutOfMemory`` (exit 1) whose message a user can act on. Nothing
here imports torch: the CLI uses it for whatever escapes to it.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence

from zoo_core.data.memory import human_bytes
from zoo_core.errors import ZooError

_HOST_MARKERS = ("DefaultCPUAllocator: can't allocate memory", "DefaultCPUAllocator: not enough memory")
_CPU_REQUEST = re.compile(r"tried to allocate (\d+) bytes", re.IGNORECASE)
_GPU_REQUEST = re.compile(r"Tried to allocate ([\d.]+) (B|KiB|MiB|GiB|TiB)")
_UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


class OutOfMemory(ZooError):
    """Host or GPU memory ran out; the message says where, how much, and the option to change."""


def kind_of(err: BaseException) -> str | None:
    """ "host" or "GPU" when ``err`` is an allocation that failed for want of memory, else None."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(err, getattr(torch, "OutOfMemoryError", ())):
        return "GPU"
    if isinstance(err, MemoryError):
        return "host"
    if isinstance(err, RuntimeError) and any(marker in str(err) for marker in _HOST_MARKERS):
        return "host"
    return None


def requested_bytes(err: BaseException) -> int | None:
    """The size of the allocation that failed, when the message gives it."""
    text = str(err)
    match = _CPU_REQUEST.search(text)
    if match:
        return int(match.group(1))
    match = _GPU_REQUEST.search(text)
    if match:
        return round(float(match.group(1)) * _UNITS[match.group(2)])
    return None


def memory_figures(kind: str, device: object = None) -> tuple[int | None, int | None]:
    """(bytes in use by this process, bytes free) for host memory or the GPU ``device``; None: unknown."""
    if kind == "GPU":
        torch = sys.modules.get("torch")
        try:
            free, _total = torch.cuda.mem_get_info(device)  # type: ignore[union-attr]
            return int(torch.cuda.memory_reserved(device)), int(free)  # type: ignore[union-attr]
        except Exception:  # no CUDA after all, or the device is lost: the line goes without the figures
            return None, None
    from zoo_core.data.memory import free_ram

    return _resident_bytes(), free_ram()


def _resident_bytes() -> int | None:
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def memory_error(
    err: BaseException,
    *,
    where: str,
    device: object = None,
    options: Sequence[str] = (),
    state: str = "",
) -> OutOfMemory | None:
    """The one-line ``OutOfMemory`` for ``err`` (None when ``err`` is not out-of-memory).

    ``where``: what was running ("a training step of fastnet, batch 4 of 3×2048×2048 images");
    ``options``: what to change, best first ("--batch-size 2", "--data-mode stream"); ``state``: what became
    of the saved state, said truthfully by the caller.
    """
    kind = kind_of(err)
    if kind is None:
        return None
    asked = requested_bytes(err)
    in_use, free = memory_figures(kind, device)
    on_cuda = kind == "GPU" and str(device).startswith("cuda")
    label = f"GPU memory on {device}" if on_cuda else f"{kind} memory"
    figures = []
    if asked is not None:
        figures.append(f"it asked for {human_bytes(asked)} more")
    if in_use is not None:
        figures.append(f"{human_bytes(in_use)} in use")
    if free is not None:
        figures.append(f"{human_bytes(free)} free")
    line = f"Out of {label} in {where}"
    if figures:
        line += f" ({', '.join(figures)})"
    if options:
        line += f"; try {' or '.join(options)}"
    if state:
        line += f"; {state}"
    return OutOfMemory(line)


@contextlib.contextmanager
def said_in_one_line(describe: Callable[[BaseException], OutOfMemory | None]) -> Iterator[None]:
    """Inside the block, an error that ``describe`` turns into an ``OutOfMemory`` (``memory_error`` with
    the caller's context) is raised as that; any other passes unchanged. ``describe`` runs only on failure."""
    try:
        yield
    except Exception as err:
        said = describe(err)
        if said is None:
            raise
        raise said from err
