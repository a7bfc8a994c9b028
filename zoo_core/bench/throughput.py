"""Model speed: images per second for inference and training steps on one device, with the parameter
count, forward FLOPs, the TFLOP/s reached and, on a known GPU, the share of its peak (MFU).

Method (after timm's benchmark.py): random input of the model's registered size on the device, ``warmup``
untimed steps, then ``runs`` timed steps with the device synchronised after each; the median step time
gives img/s. A CUDA out-of-memory error retries at half the batch; any other failure becomes the row's
``error`` rather than stopping the run. With ``compile`` the model goes through ``torch.compile`` and the
compilation falls in the (at least one) warm-up step.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo_core import device as zdevice
from zoo_core.allocator import keep_freed_memory
from zoo_core.bench.peaks import achieved_tflops, mfu, peak_tflops
from zoo_core.catalog import get_catalog
from zoo_core.errors import BadInputError
from zoo_core.kit import contracts
from zoo_core.plugins import one_line
from zoo_core.progress import Phase

MODES = ("infer", "train")
FLOPS_SIZE = 32  # FLOPs are reported at 32×32 for every model, so the column compares like with like
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(precision: str, device: str) -> str:
    """The precision ``precision`` means on ``device`` (zoo_core.device.choose_precision): ``auto`` → bf16
    on a GPU that supports it, else fp16; on a CPU bf16 where it is native (AMX, AVX-512-BF16), else fp32."""
    return zdevice.choose_precision(precision, zdevice.probe_hardware(device)).precision


def count_flops(model: nn.Module, in_chans: int, size: int | tuple[int, int] = FLOPS_SIZE) -> int:
    """Forward FLOPs of one image at ``size`` (an int for a square, or (H, W)); a multiply-add counts 2,
    as torch.utils.flop_counter counts them."""
    from torch.utils.flop_counter import FlopCounterMode

    height, width = (size, size) if isinstance(size, int) else size
    param = next(model.parameters())
    x = torch.randn(1, in_chans, height, width, device=param.device, dtype=param.dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device, precision: str) -> AbstractContextManager[Any]:
    dtype = _DTYPES[precision]
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def _make_step(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, mode: str, device: torch.device, precision: str
) -> Callable[[], None]:
    if mode == "infer":
        model.eval()

        def infer_step() -> None:
            with torch.inference_mode(), _autocast(device, precision):
                model(x)

        return infer_step

    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

    def train_step() -> None:
        with _autocast(device, precision):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return train_step


def _time_steps(
    model: nn.Module,
    *,
    mode: str,
    device: torch.device,
    precision: str,
    batch_size: int,
    input_size: tuple[int, int, int],
    num_classes: int,
    channels_last: bool,
    warmup: int,
    runs: int,
) -> float:
    """Median seconds of one step over ``runs`` timed steps, after ``warmup`` untimed ones."""
    x = torch.randn(batch_size, *input_size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, num_classes, (batch_size,), device=device)
    step = _make_step(model, x, y, mode, device, precision)
    for _ in range(warmup):
        step()
    _synchronize(device)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        step()
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def gpu_name(device: str | torch.device) -> str | None:
    """The GPU's name on a CUDA device, else None."""
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_name(device)


def benchmark_model(
    name: str,
    *,
    device: str,
    batch_size: int = 64,
    precision: str = "auto",
    channels_last: bool = False,
    compile: bool = False,
    warmup: int = 3,
    runs: int = 10,
    mode: str = "infer",
) -> dict[str, Any]:
    """Benchmark one registered model in one mode; returns a row whose ``error`` is None on success.

    ``gflops`` is the forward pass of one image at 32×32 (comparable across models); ``tflops`` is what
    the timed steps reached at the model's own input size (×3 for a training step) and ``mfu`` its share
    of the GPU's dense peak for the precision (None off the known GPUs, see zoo_core.bench.peaks)."""
    if torch.device(device).type == "cpu":  # as zoo train runs: freed tensors reused (zoo_core.allocator)
        keep_freed_memory()
    row: dict[str, Any] = {
        "model": name,
        "mode": mode,
        "device": device,
        "precision": precision,
        "channels_last": channels_last,
        "compile": compile,
        "batch_size": batch_size,
        "input_size": None,
        "params": None,
        "gflops": None,
        "step_ms": None,
        "img_per_s": None,
        "tflops": None,
        "mfu": None,
        "error": None,
    }
    model = None
    try:
        if mode not in MODES:
            raise BadInputError(f"Unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        dev = torch.device(device)
        row["precision"] = precision = resolve_precision(precision, device)
        entry = get_catalog().models.get(name)
        input_size = contracts.model_input_size(entry.meta)
        num_classes = contracts.model_num_classes(entry.meta)
        row["input_size"] = list(input_size)
        model = entry.build(num_classes=num_classes, in_chans=input_size[0]).to(dev)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        row["params"] = sum(p.numel() for p in model.parameters())
        try:
            row["gflops"] = count_flops(model, input_size[0]) / 1e9
        except Exception:  # a model that cannot run at 32×32 (e.g. a fixed-size ViT) still gets timed
            row["gflops"] = None
        try:
            own_size = tuple(input_size[1:])
            flops = (
                row["gflops"] * 1e9
                if own_size == (FLOPS_SIZE, FLOPS_SIZE) and row["gflops"] is not None
                else count_flops(model, input_size[0], own_size)
            )
        except Exception:
            flops = None
        if compile:
            # models share blocks' code objects: start afresh, or dynamo's recompile limit sends later
            # models to eager mode without a word
            torch._dynamo.reset()
            model = torch.compile(model)
            warmup = max(warmup, 1)  # the compilation happens in the first step: never time it
        while True:
            try:
                seconds = _time_steps(
                    model,
                    mode=mode,
                    device=dev,
                    precision=precision,
                    batch_size=batch_size,
                    input_size=input_size,
                    num_classes=num_classes,
                    channels_last=channels_last,
                    warmup=warmup,
                    runs=runs,
                )
                break
            except torch.cuda.OutOfMemoryError:
                if batch_size == 1:
                    raise
            # retried outside the except block, so the failed step's tensors are released first
            row["batch_size"] = batch_size = batch_size // 2
            model.zero_grad(set_to_none=True)
            torch.cuda.empty_cache()
        row["step_ms"] = seconds * 1e3
        row["img_per_s"] = batch_size / seconds
        if flops is not None:
            row["tflops"] = achieved_tflops(flops, row["img_per_s"], mode)
            tf32 = torch.backends.cudnn.allow_tf32  # fp32 convolutions run as TF32 unless this is off
            row["mfu"] = mfu(row["tflops"], peak_tflops(gpu_name(dev), precision, tf32=tf32))
    except Exception as exc:
        row["error"] = one_line(exc)
    finally:
        del model
        if str(device).startswith("cuda") and torch.cuda.is_available():
            torch.cuda.empty_cache()
    return row


def select_models(patterns: Iterable[str] = ()) -> list[str]:
    """Registered model names matching shell-style ``patterns`` (all non-namespace models when empty), in
    the order of the patterns (sorted within one); namespace names (``timm/...``) only when a pattern names
    their prefix. Matching nothing is an error."""
    patterns = list(patterns)
    registry = get_catalog().models
    names = [] if patterns else registry.names()
    for pattern in patterns:
        names += registry.names(include=pattern)
        # exact names and aliases that no pattern listing covers
        if not any(c in pattern for c in "*?[") and pattern in registry:
            names.append(registry.get(pattern).name)
    names = list(dict.fromkeys(names))
    if not names:
        raise BadInputError(f"No model matches {' '.join(patterns)!r} (see: zoo list models)")
    return names


def run_bench(
    patterns: Iterable[str] = (),
    *,
    device: str,
    batch_size: int = 64,
    precision: str = "auto",
    channels_last: bool = False,
    compile: bool = False,
    warmup: int = 3,
    runs: int = 10,
    modes: Iterable[str] = MODES,
    progress: bool = True,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Benchmark every model matching ``patterns`` in each of ``modes``; one row per model and mode.
    ``on_row`` is called with each row as it completes (to print or save partial results)."""
    modes = list(modes)
    for mode in modes:
        if mode not in MODES:
            raise BadInputError(f"Unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    resolve_precision(precision, device)
    jobs = [(name, mode) for name in select_models(patterns) for mode in modes]
    rows = []
    with Phase("bench", total=len(jobs), unit="run", enabled=progress) as bar:
        for name, mode in jobs:
            bar.note(f"{name} {mode}: warm-up and timed steps")
            row = benchmark_model(
                name,
                device=device,
                batch_size=batch_size,
                precision=precision,
                channels_last=channels_last,
                compile=compile,
                warmup=warmup,
                runs=runs,
                mode=mode,
            )
            rows.append(row)
            bar.update(1)
            if on_row is not None:
                on_row(row)
    return rows
