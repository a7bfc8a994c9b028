"""Throughput of each batch augmentation, and of a few chains, in images per second.

A batch of 512 normalized 3×32×32 images with int64 labels; each augmentation is warmed up, then timed over
several runs of a few calls each (synchronising the device around each run), and the median is reported.
A failure becomes an error column, not a crash. Example:

    python benchmarks/augmentations.py                  # → benchmarks/results/augmentations-cpu.md
    python benchmarks/augmentations.py --device cuda    # → benchmarks/results/augmentations-cuda.md
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

import zoo_core
from zoo_core.augment import build_augmentations
from zoo_core.bench import describe_machine

RESULTS = Path(__file__).resolve().parent / "results"
# Chains a run would use, timed as one pipeline.
CHAINS = ["crop flip", "crop flip mixup|cutmix", "crop flip colorjitter cutout"]
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_pipeline(pipeline, x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace) -> list[float]:
    """Images per second of ``args.runs`` runs of ``args.calls`` calls each, after a warm-up."""
    generator = torch.Generator(device=x.device).manual_seed(0)
    for _ in range(args.warmup):
        pipeline(x, y, generator)
    rates = []
    for _ in range(args.runs):
        sync(x.device)
        start = time.perf_counter()
        for _ in range(args.calls):
            pipeline(x, y, generator)
        sync(x.device)
        rates.append(args.calls * x.shape[0] / (time.perf_counter() - start))
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--calls", type=int, default=5, help="calls per timed run")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--output", type=Path, help="default: benchmarks/results/augmentations-<device>.md")
    args = parser.parse_args()

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    output = args.output or RESULTS / f"augmentations-{device.type}.md"
    catalog = zoo_core.get_catalog()
    names = [e.name for e in catalog.augmentations.entries() if e.meta.get("level") == "batch"]
    torch.manual_seed(0)
    x = torch.randn(args.batch_size, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (args.batch_size,), device=device)

    load_before = _load()
    rows = []
    for spec in [*names, *CHAINS]:
        try:
            pipeline = build_augmentations(
                spec.split(), num_classes=10, catalog=catalog, mean=CIFAR_MEAN, std=CIFAR_STD
            )
            rates, error = time_pipeline(pipeline, x, y, args), ""
        except Exception as exc:  # a failing augmentation is a row with its error, the others still run
            rates, error = [float("nan")], f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        median, best = statistics.median(rates), max(rates)
        rows.append((spec, median, best, error))
        print(f"{spec:32s} {median:12,.0f} img/s (best {best:,.0f}) {error}")

    lines = [
        f"# Batch augmentations on {device.type}",
        "",
        f"- machine: {describe_machine(device)}",
        f"- torch {torch.__version__}; batch {args.batch_size} × 3×32×32 float32, int64 labels, 10 classes",
        f"- median of {args.runs} runs of {args.calls} calls after {args.warmup} warm-up calls; "
        "each augmentation with its default options (p = 1 except flip, p = 0.5)",
        f"- command: `python benchmarks/augmentations.py --device {args.device}"
        + (f" --threads {args.threads}`" if args.threads else "`"),
        f"- load average before / after (other processes share the machine): {load_before} / {_load()}",
        "",
        "| augmentation (`--aug` in order) | median img/s | best run img/s | error |",
        "|---|---:|---:|---|",
    ]
    for spec, median, best, error in rows:
        shown = " → ".join(spec.split()).replace("|", "\\|")  # a bare | would end the table cell
        lines.append(f"| `{shown}` | {median:,.0f} | {best:,.0f} | {error} |")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join(lines) + "\n")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
