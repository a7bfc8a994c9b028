"""Measure every built-in model on this machine's CPU: parameters, forward GFLOPs at 32×32, and training
and inference images per second at one batch size. Writes benchmarks/results/models-cpu.md.

    python benchmarks/models_cpu.py [--batch-size 64] [--runs 3] [--warmup 3] [--threads 2]

Each model runs at its registered input size (3×32×32; LeNet 1×32×32) in fp32; see zoo_core.bench for the
method (CPU steps need about three warm-up steps to settle). About seven minutes on two cores.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from zoo_core import get_catalog
from zoo_core.bench import format_markdown, make_report, run_bench

RESULTS = Path(__file__).resolve().parent / "results" / "models-cpu.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    names = get_catalog().models.names(plugin="builtin.models")
    settings = dict(
        device="cpu",
        batch_size=args.batch_size,
        precision="fp32",
        channels_last=False,
        warmup=args.warmup,
        runs=args.runs,
    )
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    rows = run_bench(names, modes=("infer", "train"), **settings)
    elapsed = time.perf_counter() - start
    report = make_report(rows, **settings)
    load_after = os.getloadavg()[0]
    footer = (
        f"\nMeasured with `python benchmarks/models_cpu.py --batch-size {args.batch_size} --runs {args.runs} "
        f"--warmup {args.warmup} --threads {args.threads}` in {elapsed:.0f} s. The 1-minute load average was "
        f"{load_before:.1f} at the start and {load_after:.1f} at the end on {os.cpu_count()} logical CPUs: "
        "a load above the thread count means other processes shared the cores and the img/s figures are "
        "low by about that ratio.\n"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(format_markdown(report) + footer)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
