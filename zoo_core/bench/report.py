"""Benchmark reports: the machine they ran on, the settings, and the rows, as markdown, JSON or CSV.

Two kinds of rows share the format: throughput rows (``mode`` "infer" or "train", from
zoo_core.bench.throughput) and accuracy rows (``mode`` "accuracy", from zoo_core.bench.accuracy).
Markdown is produced a piece at a time (header, then rows) so the CLI can print rows as they complete.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from zoo_core.bench.throughput import FLOPS_SIZE, resolve_precision
from zoo_core.errors import BadInputError

REPORT_SUFFIXES = (".md", ".json", ".csv")


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
    """What the figures were measured on: CPU, cores, threads, GPU (on CUDA), torch and Python, date."""
    info: dict[str, Any] = {
        "cpu": cpu_name(),
        "cpu_cores": os.cpu_count(),
        "cpu_threads": torch.get_num_threads(),
        "gpu": None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_avg": _load_average(),
    }
    if torch.device(device).type == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def _load_average() -> float | None:
    # the 1-minute load average: above the core count, other work shared the CPU and slowed the figures
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def describe_machine(device: str | torch.device) -> str:
    """One line naming what a benchmark ran on: CPU (its kernel-deciding instruction set: AVX2, AVX512,
    AMX…), cores, threads, GPU, torch, Python, load average."""
    from zoo_core.device import cpu_capability

    device = torch.device(device)
    parts = [
        f"CPU: {cpu_name()} ({cpu_capability()}), {os.cpu_count()} logical cores, "
        f"torch threads {torch.get_num_threads()}",
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
    compile: bool = False,
    machine: dict[str, Any] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """The JSON document of a throughput run: the machine (``machine_info`` when not given), the command,
    the settings, one row per model and mode."""
    settings = {
        "mode": "throughput",
        "device": device,
        "batch_size": batch_size,
        "precision": resolve_precision(precision, device),
        "channels_last": channels_last,
        "compile": compile,
        "warmup": warmup,
        "runs": runs,
    }
    return _document(rows, settings, device, machine, command)


def make_accuracy_report(
    rows: list[dict[str, Any]],
    *,
    device: str,
    dataset: str | None,
    epochs: int | None,
    batch_size: int | None,
    precision: str | None,
    channels_last: bool | None,
    compile: bool,
    seed: int,
    targets: tuple[float, ...],
    machine: dict[str, Any] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """The JSON document of an accuracy run (``None`` settings: each model's default or recipe)."""
    settings = {
        "mode": "accuracy",
        "device": device,
        "dataset": dataset,
        "epochs": epochs,
        "batch_size": batch_size,
        "precision": precision,
        "channels_last": channels_last,
        "compile": compile,
        "seed": seed,
        "targets": list(targets),
    }
    return _document(rows, settings, device, machine, command)


def _document(
    rows: list[dict[str, Any]],
    settings: dict[str, Any],
    device: str,
    machine: dict[str, Any] | None,
    command: str | None,
) -> dict[str, Any]:
    machine = dict(machine or machine_info(device))
    machine["load_avg_end"] = _load_average()
    return {"machine": machine, "command": command, "settings": settings, "results": rows}


def is_accuracy(report: dict[str, Any]) -> bool:
    return report["settings"].get("mode") == "accuracy"


# -- markdown -------------------------------------------------------------------------------------------


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|")


def _num(value: float | None, spec: str, suffix: str = "") -> str:
    return "—" if value is None else f"{value:{spec}}{suffix}"


def target_label(target: float) -> str:
    """0.94 → '94%' (the column name of the time to reach it)."""
    return f"{target * 100:g}%"


def load_verdict(machine: dict[str, Any]) -> str:
    """What the load averages say: other work shared the CPU when one exceeds the core count."""
    cores = machine.get("cpu_cores")
    loads = [v for v in (machine.get("load_avg"), machine.get("load_avg_end")) if v is not None]
    if not cores or not loads:
        return ""
    if max(loads) > cores:
        return " (above the core count: other work shared the CPU and slowed the figures)"
    return f" (at most the {cores} cores: the machine was not oversubscribed)"


def markdown_header(report: dict[str, Any]) -> list[str]:
    """The page's title, machine, settings and method, and the table's header lines."""
    machine, settings = report["machine"], report["settings"]
    lines = [
        "# zoo bench" + (" --accuracy" if is_accuracy(report) else ""),
        "",
        f"- Machine: {machine['cpu']} ({machine.get('cpu_cores') or '?'} logical cores, "
        f"{machine['cpu_threads']} torch threads)" + (f", GPU {machine['gpu']}" if machine["gpu"] else ""),
        f"- torch {machine['torch']}, Python {machine['python']}, {machine['platform']}",
        f"- Date: {machine['date']}; 1-minute load average {machine.get('load_avg')} at the start, "
        f"{machine.get('load_avg_end')} at the last row{load_verdict(machine)}",
    ]
    if report.get("command"):
        lines.append(f"- Command: `{report['command']}`")
    if is_accuracy(report):
        targets = settings["targets"]
        dataset = settings["dataset"] or "each model's default_dataset"
        epochs = settings["epochs"] or "the recipe's"
        batch = settings["batch_size"] or "the recipe's"
        lines += [
            f"- Settings: device {settings['device']}, data set {dataset}, epochs {epochs}, "
            f"batch size {batch}, precision {settings['precision'] or 'the recipe’s'}, "
            f"channels_last {({True: 'yes', False: 'no'}).get(settings['channels_last'], 'the recipe’s')}, "
            f"compile {'yes' if settings['compile'] else 'no'}, seed {settings['seed']}",
            "- Each model is trained by zoo's Trainer with the data set's recipe and evaluated on the test "
            "split after every epoch; top-1/top-5 are the last epoch's. train s: wall seconds from the "
            "start of training to the end of the last epoch (evaluations and checkpoints included, data "
            "loading and model building not); img/s: training images per second (harmonic mean over the "
            "epochs); 's to X%': the train s at the end of the first epoch whose test top-1 reached X% "
            "(with the recipe's TTA on the last epoch, where it has one).",
            "",
            "| model | data set | epochs | batch | params | top-1 | top-5 | train s | img/s | "
            + " | ".join(f"s to {target_label(t)}" for t in targets)
            + " | notes |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(targets) + "---|",
        ]
        return lines
    lines += [
        f"- Settings: device {settings['device']}, precision {settings['precision']}, "
        f"batch size {settings['batch_size']}, channels_last {'yes' if settings['channels_last'] else 'no'}, "
        f"torch.compile {'yes' if settings.get('compile') else 'no'}, "
        f"{settings['warmup']} warm-up and {settings['runs']} timed steps (median)",
        "- img/s = batch size / median step time, at each model's registered input size; a train step is "
        "forward, cross-entropy, backward and an SGD update.",
        f"- GFLOPs: forward pass of one image at {FLOPS_SIZE}×{FLOPS_SIZE}, counted by "
        "torch.utils.flop_counter (one multiply-add = 2 FLOPs). TFLOP/s: FLOPs per image at the input size "
        "(×3 for a train step) × img/s. MFU: TFLOP/s as a share of the GPU's dense peak for the precision "
        "(H100, H200, A100; see zoo_core/bench/peaks.py); — elsewhere.",
        "",
        "| model | input | params | GFLOPs | infer img/s | train img/s | infer TFLOP/s | train TFLOP/s "
        "| infer MFU | train MFU | notes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    return lines


def markdown_rows(report: dict[str, Any], rows: list[dict[str, Any]] | None = None) -> list[str]:
    """Table lines for ``rows`` (default: all of the report's); throughput rows of one model share a line."""
    rows = report["results"] if rows is None else rows
    if is_accuracy(report):
        return [_accuracy_line(row, report["settings"]["targets"]) for row in rows]
    by_model: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        by_model.setdefault(row["model"], {})[row["mode"]] = row
    return [_throughput_line(name, modes, report["settings"]) for name, modes in by_model.items()]


def format_markdown(report: dict[str, Any]) -> str:
    """A markdown page: the machine and settings, then one table row per model."""
    return "\n".join(markdown_header(report) + markdown_rows(report)) + "\n"


def _throughput_line(name: str, rows: dict[str, dict[str, Any]], settings: dict[str, Any]) -> str:
    first = next(iter(rows.values()))
    size = "×".join(str(v) for v in first["input_size"]) if first["input_size"] else "—"
    params = next((f"{r['params']:,}" for r in rows.values() if r["params"] is not None), "—")
    gflops = next((f"{r['gflops']:.3g}" for r in rows.values() if r["gflops"] is not None), "—")
    notes = []
    for mode, row in rows.items():
        if row["error"]:
            notes.append(f"{mode}: {row['error']}")
        elif row["batch_size"] != settings["batch_size"]:
            notes.append(f"{mode}: batch {row['batch_size']} after out-of-memory")

    def get(mode: str, key: str) -> float | None:
        return rows[mode].get(key) if mode in rows else None

    cells = [
        name,
        size,
        params,
        gflops,
        _num(get("infer", "img_per_s"), ",.1f"),
        _num(get("train", "img_per_s"), ",.1f"),
        _num(get("infer", "tflops"), ".3g"),
        _num(get("train", "tflops"), ".3g"),
        _num(None if get("infer", "mfu") is None else get("infer", "mfu") * 100, ".1f", "%"),
        _num(None if get("train", "mfu") is None else get("train", "mfu") * 100, ".1f", "%"),
        "; ".join(notes),
    ]
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _accuracy_line(row: dict[str, Any], targets: list[float]) -> str:
    notes = [row["error"]] if row["error"] else []
    if row.get("tta_top1") is not None:
        notes.append(f"with TTA ({row['tta']}) {row['tta_top1'] * 100:.2f}%")
    if row.get("oom_retries"):
        notes.append(f"batch {row['batch_size']} after out-of-memory")
    time_to = row.get("time_to") or {}
    cells = [
        row["model"],
        row["dataset"] or "—",
        _num(row["epochs"], "d"),
        _num(row["batch_size"], "d"),
        _num(row["params"], ","),
        _num(None if row["top1"] is None else row["top1"] * 100, ".2f", "%"),
        _num(None if row["top5"] is None else row["top5"] * 100, ".2f", "%"),
        _num(row["train_s"], ".1f"),
        _num(row["img_per_s"], ",.0f"),
        *(_num(time_to.get(str(t)), ".1f") for t in targets),
        "; ".join(notes),
    ]
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


# -- CSV and files ----------------------------------------------------------------------------------------


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if key == "time_to":
            flat.update({f"time_to_{target}": seconds for target, seconds in value.items()})
        elif isinstance(value, list | tuple | dict):
            flat[key] = json.dumps(value)
        else:
            flat[key] = value
    return flat


def format_csv(report: dict[str, Any]) -> str:
    """One CSV line per row, with the machine and settings repeated as leading columns; ``time_to`` becomes
    one ``time_to_<target>`` column per target, lists (the accuracy curve) JSON text."""
    machine = {f"machine_{k}": v for k, v in report["machine"].items()}
    rows = [{**machine, **_flat(row)} for row in report["results"]]
    fields = list(dict.fromkeys(key for row in rows for key in row)) or list(machine)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def check_report_path(path: Path) -> None:
    if Path(path).suffix not in REPORT_SUFFIXES:
        raise BadInputError(f"Cannot write {path}: the report file must end in .md, .json or .csv")


def write_report(report: dict[str, Any], path: Path) -> None:
    """Write ``report`` as markdown (``.md``), JSON (``.json``) or CSV (``.csv``), chosen by the suffix;
    atomically, so a run cut short leaves the last complete version."""
    path = Path(path)
    check_report_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        text = json.dumps(report, indent=2) + "\n"
    elif path.suffix == ".csv":
        text = format_csv(report)
    else:
        text = format_markdown(report)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
