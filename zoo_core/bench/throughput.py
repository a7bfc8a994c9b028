"""Model speed benchmarks: images per second for inference and training steps on one device, with the
parameter count and forward FLOPs, reported as a markdown table or JSON that names the machine.

Method (after timm's benchmark.py): random input of the model's registered size on the device, ``warmup``
untimed steps, then ``runs`` timed steps with the device synchronised after each; the median step time
gives img/s. A CUDA out-of-memory error retries at half the batch; any other failure becomes the row's
``error`` rather than stopping the run.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from zoo_core.catalog import get_catalog
from zoo_core.errors import BadInputError
from zoo_core.plugins import one_line

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MODES = ("infer", "train")
REPORT_SUFFIXES = (".md", ".json")
FLOPS_SIZE = 32  # FLOPs are reported at 32×32 for every model, so the column compares like with like
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(precision: str, device: str) -> str:
    """``auto`` → bf16 on a GPU that supports it, else fp16 on CUDA, fp32 on CPU."""
    if precision not in PRECISIONS:
        raise BadInputError(f"Unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    if torch.device(device).type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def count_flops(model: nn.Module, in_chans: int, size: int = FLOPS_SIZE) -> int:
    """Forward FLOPs of one image at ``size``×``size`` (a multiply-add counts 2, as torch counts them)."""
    from torch.utils.flop_counter import FlopCounterMode

    param = next(model.parameters())
    x = torch.randn(1, in_chans, size, size, device=param.device, dtype=param.dtype)
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


def benchmark_model(
    name: str,
    *,
    device: str,
    batch_size: int = 64,
    precision: str = "auto",
    channels_last: bool = False,
    warmup: int = 3,
    runs: int = 10,
    mode: str = "infer",
) -> dict[str, Any]:
    """Benchmark one registered model in one mode; returns a row whose ``error`` is None on success."""
    row: dict[str, Any] = {
        "model": name,
        "mode": mode,
        "device": device,
        "precision": precision,
        "channels_last": channels_last,
        "batch_size": batch_size,
        "input_size": None,
        "params": None,
        "gflops": None,
        "step_ms": None,
        "img_per_s": None,
        "error": None,
    }
    model = None
    try:
        if mode not in MODES:
            raise BadInputError(f"Unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        dev = torch.device(device)
        row["precision"] = precision = resolve_precision(precision, device)
        entry = get_catalog().models.get(name)
        input_size = tuple(entry.meta.get("input_size") or (3, 32, 32))
        num_classes = int(entry.meta.get("num_classes") or 10)
        row["input_size"] = list(input_size)
        model = entry.build(num_classes=num_classes, in_chans=input_size[0]).to(dev)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        row["params"] = sum(p.numel() for p in model.parameters())
        try:
            row["gflops"] = count_flops(model, input_size[0]) / 1e9
        except Exception:  # a model that cannot run at 32×32 (e.g. a fixed-size ViT) still gets timed
            row["gflops"] = None
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
    except Exception as exc:
        row["error"] = one_line(exc)
    finally:
        del model
        if str(device).startswith("cuda") and torch.cuda.is_available():
            torch.cuda.empty_cache()
    return row


def select_models(patterns: Iterable[str] = ()) -> list[str]:
    """Registered model names matching shell-style ``patterns`` (all non-namespace models when empty);
    namespace names (``timm/...``) only when a pattern names their prefix. Matching nothing is an error."""
    patterns = list(patterns)
    registry = get_catalog().models
    names = registry.names(include=patterns or None)
    for pattern in patterns:  # exact names and aliases that no pattern listing covers
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
    warmup: int = 3,
    runs: int = 10,
    modes: Iterable[str] = MODES,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Benchmark every model matching ``patterns`` in each of ``modes``; one row per model and mode."""
    modes = list(modes)
    for mode in modes:
        if mode not in MODES:
            raise BadInputError(f"Unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    resolve_precision(precision, device)
    jobs = [(name, mode) for name in select_models(patterns) for mode in modes]
    rows = []
    with tqdm(jobs, desc="bench", unit="run", file=sys.stderr, disable=not progress) as bar:
        for name, mode in bar:
            bar.set_postfix_str(f"{name} {mode}")
            rows.append(
                benchmark_model(
                    name,
                    device=device,
                    batch_size=batch_size,
                    precision=precision,
                    channels_last=channels_last,
                    warmup=warmup,
                    runs=runs,
                    mode=mode,
                )
            )
    return rows


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: str) -> dict[str, Any]:
    """What the figures were measured on: CPU, threads, GPU (on CUDA), torch and Python, date."""
    info: dict[str, Any] = {
        "cpu": cpu_name(),
        "cpu_threads": torch.get_num_threads(),
        "gpu": None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def describe_machine(device: str | torch.device) -> str:
    """One line naming what a benchmark ran on: CPU, cores, threads, GPU, torch, Python, load average."""
    device = torch.device(device)
    parts = [
        f"CPU: {cpu_name()}, {os.cpu_count()} logical cores, torch threads {torch.get_num_threads()}",
        f"torch {torch.__version__}, Python {platform.python_version()}, {platform.system()}",
    ]
    if device.type == "cuda":
        parts.append(f"GPU: {torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})")
    if hasattr(os, "getloadavg"):
        parts.append("load average: " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    return "; ".join(parts)


def make_report(
    rows: list[dict[str, Any]],
    *,
    device: str,
    batch_size: int,
    precision: str,
    channels_last: bool,
    warmup: int,
    runs: int,
) -> dict[str, Any]:
    """The JSON document: the machine, the settings the rows were measured with, one row per run."""
    settings = {
        "device": device,
        "batch_size": batch_size,
        "precision": resolve_precision(precision, device),
        "channels_last": channels_last,
        "warmup": warmup,
        "runs": runs,
    }
    return {"machine": machine_info(device), "settings": settings, "results": rows}


def _fmt_rate(row: dict[str, Any] | None) -> str:
    if row is None or row["img_per_s"] is None:
        return "—"
    return f"{row['img_per_s']:,.1f}"


def format_markdown(report: dict[str, Any]) -> str:
    """A markdown page: the machine and settings, then one table row per model."""
    machine, settings = report["machine"], report["settings"]
    lines = [
        "# zoo bench",
        "",
        f"- Machine: {machine['cpu']} ({machine['cpu_threads']} torch threads)"
        + (f", GPU {machine['gpu']}" if machine["gpu"] else ""),
        f"- torch {machine['torch']}, Python {machine['python']}, {machine['platform']}",
        f"- Date: {machine['date']}",
        f"- Settings: device {settings['device']}, precision {settings['precision']}, "
        f"batch size {settings['batch_size']}, channels_last {'yes' if settings['channels_last'] else 'no'}, "
        f"{settings['warmup']} warm-up and {settings['runs']} timed steps (median)",
        "- img/s = batch size / median step time, at each model's registered input size; a train step is "
        "forward, cross-entropy, backward and an SGD update.",
        f"- GFLOPs: forward pass of one image at {FLOPS_SIZE}×{FLOPS_SIZE}, counted by "
        "torch.utils.flop_counter (one multiply-add = 2 FLOPs).",
        "",
        "| model | input | params | GFLOPs | infer img/s | train img/s | notes |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    by_model: dict[str, dict[str, dict[str, Any]]] = {}
    for row in report["results"]:
        by_model.setdefault(row["model"], {})[row["mode"]] = row
    for name, rows in by_model.items():
        first = next(iter(rows.values()))
        size = "×".join(str(v) for v in first["input_size"]) if first["input_size"] else "—"
        params = next((f"{r['params']:,}" for r in rows.values() if r["params"] is not None), "—")
        gflops = next((f"{r['gflops']:.3g}" for r in rows.values() if r["gflops"] is not None), "—")
        notes = []
        for mode, row in rows.items():
            if row["error"]:
                notes.append(f"{mode}: {row['error']}".replace("|", "\\|"))
            elif row["batch_size"] != settings["batch_size"]:
                notes.append(f"{mode}: batch {row['batch_size']} after out-of-memory")
        lines.append(
            f"| {name} | {size} | {params} | {gflops} | {_fmt_rate(rows.get('infer'))} "
            f"| {_fmt_rate(rows.get('train'))} | {'; '.join(notes)} |"
        )
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], path: Path) -> None:
    """Write ``report`` as markdown (``.md``) or JSON (``.json``), chosen by the file's suffix."""
    path = Path(path)
    if path.suffix not in REPORT_SUFFIXES:
        raise BadInputError(f"Cannot write {path}: the report file must end in .md or .json")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        path.write_text(json.dumps(report, indent=2) + "\n")
    else:
        path.write_text(format_markdown(report))
