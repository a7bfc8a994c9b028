"""Whether a data set fits in memory, decided before anything is decoded: the memory plan.

A data set held in memory costs ``images × C × H × W`` bytes as uint8. Decoding holds the images once more
while they are stacked, so in RAM the plan asks for twice that, and it keeps a margin of the free memory
for everything else (the model, its activations, the optimizer). Free RAM is the least of what the kernel
says is available, what the process's cgroup still allows and what ``ulimit -v`` leaves to the process;
free GPU memory is ``torch.cuda.mem_get_info``. The plan is a pure function of those numbers
(``plan_data_mode``), so it is tested with the sizes faked.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

DATA_MODES = ("auto", "memory", "stream")
RAM_COPIES = 2  # the decoded images and the stacked tensor, while it is being built
MARGIN = 0.8  # the share of the free memory a data set may take; the rest is the run's


@dataclass(frozen=True)
class MemoryPlan:
    """``mode`` ("memory" or "stream") and the one line that says why."""

    mode: str
    need: int  # bytes the in-memory tensor needs, copies included
    free: int  # bytes free where it would live
    line: str
    fits: bool


def human_bytes(n: float) -> str:
    """1.2 KB, 9.2 MB, 37.7 GB (powers of 1,000, as the plan line counts them)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def plan_data_mode(
    requested: str,
    *,
    images: int,
    shape: tuple[int, int, int],
    free: int,
    where: str = "free",
    copies: int = RAM_COPIES,
    margin: float = MARGIN,
    what: str = "imagefolder",
    streamed: str = "streaming from disk",
) -> MemoryPlan:
    """memory when ``images`` of ``shape`` (C, H, W, uint8) × ``copies`` fit in ``margin`` of ``free``
    bytes, else stream; ``requested`` "memory" or "stream" forces it (a forced memory that does not fit is
    the caller's error to raise, with ``line``). ``streamed`` says what "stream" means where it is asked."""
    if requested not in DATA_MODES:
        raise ValueError(f"data mode must be one of {', '.join(DATA_MODES)}, not {requested!r}")
    c, h, w = shape
    tensor = images * c * h * w
    need = tensor * copies
    fits = need <= margin * free
    mode = ("memory" if fits else "stream") if requested == "auto" else requested
    sizes = f"{images:,} images at {c}×{h}×{w} = {human_bytes(tensor)}"
    if copies > 1:
        sizes += f" (×{copies} while decoding)"
    compare = "≤" if fits else ">"
    budget = f"{compare} {margin:.0%} of {human_bytes(free)} {where}"
    if mode == "memory":
        how = "held in memory" if requested == "auto" else "held in memory (--data-mode memory)"
    else:
        how = streamed if requested == "auto" else f"{streamed} (--data-mode stream)"
    return MemoryPlan(mode, need, free, f"{what}: {sizes} {budget}: {how}", fits)


def free_ram() -> int:
    """Bytes this process can still take: the least of MemAvailable, its cgroup's limit less its usage and
    the address-space limit (``ulimit -v``) less its current size."""
    candidates = [_mem_available()]
    cgroup = _cgroup_room()
    if cgroup is not None:
        candidates.append(cgroup)
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        candidates.append(max(0, soft - _vm_size()))
    return max(0, min(candidates))


def free_gpu_memory(device: object) -> int:
    """Free bytes on a CUDA device (``torch.cuda.mem_get_info``)."""
    import torch

    free, _total = torch.cuda.mem_get_info(torch.device(device))
    return int(free)


def _mem_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX: no limit known
        return 1 << 62


def _cgroup_room() -> int | None:
    """The cgroup's memory limit less its usage (v2, then v1), or None without a limit."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or int(limit) >= 1 << 60:
            return None
        return max(0, int(limit) - usage)
    return None


def _vm_size() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0
