"""The pre-flight word: after the first steps of a CPU run, one line when the rest would take hours.

A recipe sized for a GPU (resnet18 on CIFAR-10, 200 epochs) can run for days on a laptop's CPU; the ETA on the
progress line says so, but not that the recipe does not fit, nor what would. This line does, once: the
projected time from the steps measured after the first (which warms up), the measured img/s, how many
epochs fit in ``LIMIT_S``, where to compare models here, and the model's rate on a benchmarked GPU.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from zoo_core.progress import clock_text

LIMIT_S = 2 * 3600  # a run projected past this on a CPU gets the line
STEADY_STEPS = 3  # steps timed after the first before the projection is made

# Training img/s of each built-in model at 3×32×32 (1×32×32 for lenet) on an NVIDIA H200, bf16, batch 512,
# channels_last, eager: benchmarks/results/gpu-h200/02-throughput-eager.md (zoo bench, 2026-11-26).
GPU_CARD = "an NVIDIA H200"
GPU_SOURCE = "benchmarks/results/gpu-h200/02-throughput-eager.md"
GPU_TRAIN_IMG_PER_S_32PX = {
    "fastnet": 116918,
    "googlenet": 8537,
    "inception": 20034,
    "lenet": 204781,
    "mobilenet_v1": 51502,
    "mobilenet_v2": 25765,
    "resnet18": 40868,
    "resnet34": 27950,
    "resnet50": 15503,
    "tv_resnet18": 47276,
    "vgg11": 100797,
    "vgg13": 66419,
    "vgg16": 57178,
    "vgg19": 51630,
}


def warning_line(
    *,
    seconds_left: float,
    seconds_per_step: float,
    steps_per_epoch: int,
    batch_size: int,
    images_left: int,
    model: str,
    input_size: tuple[int, ...],
    limit: float = LIMIT_S,
) -> str | None:
    """The line for a run with ``seconds_left`` of training steps to go, or None when it fits ``limit``."""
    if seconds_left <= limit:
        return None
    rate = batch_size / seconds_per_step
    epoch_s = seconds_per_step * steps_per_epoch
    parts = [
        f"at {rate:,.1f} img/s on this CPU the rest of this run would take about {clock_text(seconds_left)} "
        "(its training steps alone, projected from the steps so far)"
    ]
    fits = int(limit // epoch_s)
    if fits >= 1:
        parts.append(f"an epoch takes {clock_text(epoch_s)}: --epochs {fits} fits in {clock_text(limit)}")
    else:
        parts.append(f"one epoch alone takes {clock_text(epoch_s)}")
    parts.append("`zoo bench --device cpu` shows which models train faster here")
    gpu = GPU_TRAIN_IMG_PER_S_32PX.get(model)
    if gpu and tuple(input_size[1:]) == (32, 32):
        parts.append(
            f"on {GPU_CARD} {model} trains at {gpu:,} img/s ({GPU_SOURCE}): about "
            f"{clock_text(images_left / gpu)} for the rest (an estimate from that rate)"
        )
    return "zoo: warning: " + "; ".join(parts)


class Preflight:
    """Times the steps after the first and, after ``steady`` of them, writes ``warning_line`` if it says
    anything; ``done`` once it has looked. Called with each finished step (host clock only: CPU runs)."""

    def __init__(
        self,
        *,
        total_steps: int,
        steps_per_epoch: int,
        batch_size: int,
        model: str,
        input_size: tuple[int, ...],
        limit: float | None = None,
        steady: int = STEADY_STEPS,
        clock: Callable[[], float] = time.perf_counter,
        file: Any = None,
    ) -> None:
        self.total_steps, self.steps_per_epoch, self.batch_size = total_steps, steps_per_epoch, batch_size
        self.model, self.input_size, self.steady = model, input_size, steady
        self.limit = LIMIT_S if limit is None else limit
        self.clock, self.file = clock, file
        self.first: tuple[int, float] | None = None  # (step, time) when the first timed step began
        self.done = False
        self.line: str | None = None

    def step_done(self, step: int) -> None:
        if self.done:
            return
        now = self.clock()
        if self.first is None:
            self.first = (step, now)
            return
        timed = step - self.first[0]
        if timed < self.steady:
            return
        self.done = True
        per_step = (now - self.first[1]) / timed
        left = self.total_steps - step
        self.line = warning_line(
            seconds_left=left * per_step,
            seconds_per_step=per_step,
            steps_per_epoch=self.steps_per_epoch,
            batch_size=self.batch_size,
            images_left=left * self.batch_size,
            model=self.model,
            input_size=self.input_size,
            limit=self.limit,
        )
        if self.line:
            from tqdm import tqdm

            tqdm.write(self.line, file=self.file or sys.stderr)  # above a terminal's bar, not through it
