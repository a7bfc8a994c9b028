"""Choosing the device a command runs on, and the precision and kernels that are fastest on it.

The precision choice is one pure function, :func:`choose_precision`, of what was asked, the device type and
what the hardware computes natively; :func:`probe_hardware` asks torch for the latter. Train and bench both
go through :func:`pick_precision`, so they choose alike and say so in the same words.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zoo_core.errors import BadInputError

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")

# How much slower a fastnet train step (batch 256, channels_last) ran in emulated bf16 than in fp32 on the
# same CPU: benchmarks/results/cpu-kernels-avx512.md (AVX512, no AVX512_BF16). The AVX2 figure is an estimate
# from one reading on the project's AVX2-only EPYC (8 against 130 img/s) that no results file holds: rerun
# `benchmarks/cpu_kernels.py --precisions fp32 bf16` there to replace it. Other kinds get the AVX2 figure:
# emulation there has no 512-bit help.
EMULATED_BF16_SLOWDOWN = {"AVX512": 2.8, "AVX2": 16.0}


def resolve_device(device: str) -> str:
    """``auto`` → cuda when available else cpu; ``cuda`` without CUDA is a bad-input error."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BadInputError("--device cuda was asked for, but CUDA is not available on this machine")
    return device


@dataclass(frozen=True)
class Hardware:
    """What the device computes natively. ``capability`` names it for people: on a CPU the instruction
    set that decides the kernels (AMX, AVX512_BF16, AVX512, AVX2, DEFAULT); on a GPU, its name."""

    device_type: str
    capability: str
    native_bf16: bool
    native_fp16: bool


@dataclass(frozen=True)
class PrecisionChoice:
    """The precision a run uses, the reason in a few words, and a warning when it is a poor choice."""

    precision: str  # fp32, bf16 or fp16: never auto
    reason: str
    warning: str | None = None

    @property
    def line(self) -> str:
        """The announcement: ``precision fp32: this CPU (AVX2) has no native bf16``."""
        return f"precision {self.precision}: {self.reason}"


def choose_precision(requested: str, hardware: Hardware) -> PrecisionChoice:
    """The precision for ``requested`` (auto, fp32, bf16, fp16) on ``hardware``.

    ``auto`` is the fastest correct precision: on a GPU bf16 where it has it, else fp16 (with a
    GradScaler); on a CPU bf16 autocast only where the CPU computes bf16 natively (AMX or AVX-512-BF16),
    else fp32 — elsewhere oneDNN emulates bf16 at an order of magnitude below fp32's speed. An explicit
    16-bit precision runs as asked; on a CPU that would emulate it, with a warning naming the slow-down.
    """
    if requested not in PRECISIONS:
        raise BadInputError(f"Unknown precision {requested!r}; choose one of {', '.join(PRECISIONS)}")
    on_cpu = hardware.device_type == "cpu"
    where = f"this CPU ({hardware.capability})" if on_cpu else f"this GPU ({hardware.capability})"
    if requested == "auto":
        if on_cpu:
            if hardware.native_bf16:
                return PrecisionChoice("bf16", f"{where} computes bf16 natively")
            return PrecisionChoice("fp32", f"{where} has no native bf16")
        if hardware.device_type == "cuda":
            if hardware.native_bf16:
                return PrecisionChoice("bf16", f"{where} supports bf16")
            return PrecisionChoice("fp16", f"{where} has no bf16; fp16 with a GradScaler")
        return PrecisionChoice("fp32", f"the default on {hardware.device_type}")
    if on_cpu and requested != "fp32":
        native = hardware.native_bf16 if requested == "bf16" else hardware.native_fp16
        if not native:
            factor = EMULATED_BF16_SLOWDOWN.get(hardware.capability, EMULATED_BF16_SLOWDOWN["AVX2"])
            slower = f"~{factor:g}× slower" if requested == "bf16" else "several times slower"
            return PrecisionChoice(
                requested,
                f"as asked, though {where} emulates it",
                f"--precision {requested} on {where} without native {requested}: expect training "
                f"{slower} than fp32 (--precision auto picks fp32 here)",
            )
    return PrecisionChoice(requested, "as asked")


def cpu_capability() -> str:
    """The CPU's kernel-deciding instruction set: AMX, AVX512_BF16, AVX512, AVX2 or DEFAULT."""
    import torch

    if torch.cpu._is_amx_tile_supported():
        return "AMX"
    if torch.cpu._is_avx512_bf16_supported():
        return "AVX512_BF16"
    return torch.backends.cpu.get_cpu_capability()  # AVX512, AVX2, DEFAULT (or ZVECTOR, VSX elsewhere)


def probe_hardware(device: torch.device | str) -> Hardware:
    """Ask torch what ``device`` computes natively."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return Hardware(
            "cuda",
            torch.cuda.get_device_name(device),
            native_bf16=torch.cuda.is_bf16_supported(),
            native_fp16=True,
        )
    if device.type == "cpu":
        capability = cpu_capability()
        native_fp16 = bool(getattr(torch.cpu, "_is_amx_fp16_supported", lambda: False)())
        return Hardware("cpu", capability, capability in ("AMX", "AVX512_BF16"), native_fp16)
    return Hardware(device.type, device.type, native_bf16=False, native_fp16=False)


def pick_precision(
    precision: str, device: torch.device | str, hardware: Hardware | None = None
) -> tuple[PrecisionChoice, torch.dtype | None, bool]:
    """(the choice, the autocast dtype or None, whether a GradScaler is needed) for ``--precision``."""
    import torch

    choice = choose_precision(precision, hardware or probe_hardware(device))
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[choice.precision]
    return choice, dtype, choice.precision == "fp16"  # a GradScaler guards fp16's narrow range


def default_channels_last(device_type: str) -> bool:
    """The memory format where neither the user nor a recipe chose one: channels_last on a CPU, where
    oneDNN's convolutions prefer it (AVX512, fp32 eager train step: fastnet +63%, resnet18 +18%,
    benchmarks/results/cpu-kernels-avx512.md; fastnet's recipe, tuned on AMX, uses it too); contiguous on
    a GPU, where zoo has not measured the difference yet."""
    return device_type == "cpu"


def physical_cores() -> int:
    """Physical cores of this machine (hyper-threads not counted), from /proc/cpuinfo where it says."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return os.cpu_count() or 1
    cores, physical = set(), "0"
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            physical = value.strip()
        elif key == "core id":
            cores.add((physical, value.strip()))
    return len(cores) or os.cpu_count() or 1
