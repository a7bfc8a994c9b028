"""Is `zoo bench` fair? Our inference img/s for a model against timm's benchmark method, side by side.

timm's benchmark.py (github.com/huggingface/pytorch-image-models; not shipped in the timm wheel) times
inference like this (InferenceBenchmarkRunner): the model in eval mode, moved to the device (and to
channels_last when asked), a random batch made once, ``num_warm_iter`` untimed steps, then
``num_bench_iter`` steps under ``torch.no_grad()`` and autocast, each step's end synchronised on CUDA;
img/s = images / wall time from before the first timed step to after the last (a mean over the run).
``timm_method`` below re-implements exactly that loop. zoo's method (zoo_core.bench.throughput) differs on
purpose in two places: ``torch.inference_mode()`` instead of ``no_grad``, and the median step instead of the
mean over the run (robust to a stray slow step). Both run on the same device, batch, precision and memory
format, in alternating rounds (the order flipping each round) so drift in the machine's load hits both
alike; the verdict compares the medians over the rounds and asks for agreement within ±5%.

    python benchmarks/bench_vs_timm.py --device cpu --output benchmarks/results/bench-vs-timm-cpu.md
    python benchmarks/bench_vs_timm.py --device cuda --batch-size 256 --precision bf16 --channels-last
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

from zoo_core import create_model, get_catalog
from zoo_core.bench import describe_machine
from zoo_core.bench.throughput import benchmark_model

TOLERANCE = 0.05
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def timm_method(
    name: str,
    *,
    device: str,
    batch_size: int,
    precision: str,
    channels_last: bool,
    num_warm_iter: int,
    num_bench_iter: int,
) -> float:
    """img/s of registered model ``name`` timed the way timm's InferenceBenchmarkRunner times a model."""
    entry = get_catalog().models.get(name)
    input_size = tuple(entry.meta.get("input_size") or (3, 32, 32))
    model = create_model(name, num_classes=int(entry.meta.get("num_classes") or 10), in_chans=input_size[0])
    dev = torch.device(device)
    model.to(device=dev, memory_format=torch.channels_last if channels_last else None)
    model.eval()
    dtype = _DTYPES[precision]
    cuda = dev.type == "cuda"

    def time_fn(synchronize: bool = False) -> float:  # timm's cuda_timestamp / timestamp
        if synchronize and cuda:
            torch.cuda.synchronize(dev)
        return time.perf_counter()

    def step() -> float:
        start = time_fn()
        with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            model(example)
        return time_fn(True) - start

    with torch.no_grad():
        example = torch.randn((batch_size, *input_size), device=dev)
        if channels_last:
            example = example.contiguous(memory_format=torch.channels_last)
        for _ in range(num_warm_iter):
            step()
        samples = 0
        run_start = time_fn()
        for _ in range(num_bench_iter):
            step()
            samples += batch_size
        elapsed = time_fn(True) - run_start
    return samples / elapsed


def zoo_method(
    name: str, *, device: str, batch_size: int, precision: str, channels_last: bool, warmup: int, runs: int
) -> float:
    row = benchmark_model(
        name,
        device=device,
        batch_size=batch_size,
        precision=precision,
        channels_last=channels_last,
        warmup=warmup,
        runs=runs,
        mode="infer",
    )
    if row["error"]:
        raise SystemExit(f"zoo bench failed: {row['error']}")
    return row["img_per_s"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 64 on CPU, 256 on CUDA")
    parser.add_argument(
        "--precision", choices=sorted(_DTYPES), default=None, help="default: fp32 CPU, bf16 CUDA"
    )
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps (default: 3 CPU, 10 CUDA)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 10 CPU, 50 CUDA)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds of both methods")
    parser.add_argument("--threads", type=int, default=None, help="torch threads on the CPU")
    parser.add_argument("--output", type=Path, default=None, help="write the markdown result here")
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    if args.threads:
        torch.set_num_threads(args.threads)
    if cuda:
        torch.backends.cudnn.benchmark = True  # as timm's benchmark.py sets it
    batch = args.batch_size or (256 if cuda else 64)
    precision = args.precision or ("bf16" if cuda else "fp32")
    warmup = args.warmup if args.warmup is not None else (10 if cuda else 3)
    steps = args.steps or (50 if cuda else 10)
    common = dict(device=args.device, batch_size=batch, precision=precision, channels_last=args.channels_last)
    machine = describe_machine(args.device)

    ours, theirs = [], []
    started = time.perf_counter()
    for r in range(args.rounds):
        order = ("zoo", "timm") if r % 2 == 0 else ("timm", "zoo")
        for method in order:
            if method == "zoo":
                ours.append(zoo_method(args.model, warmup=warmup, runs=steps, **common))
            else:
                theirs.append(timm_method(args.model, num_warm_iter=warmup, num_bench_iter=steps, **common))
        print(
            f"round {r + 1}: zoo {ours[-1]:,.1f} img/s, timm method {theirs[-1]:,.1f} img/s", file=sys.stderr
        )
    seconds = time.perf_counter() - started
    zoo_median, timm_median = statistics.median(ours), statistics.median(theirs)
    ratio = zoo_median / timm_median
    agree = abs(ratio - 1) <= TOLERANCE
    command = "python " + " ".join(shlex.quote(a) for a in sys.argv)
    lines = [
        f"# `zoo bench` against timm's benchmark method: {args.model} inference on {args.device}",
        "",
        f"- Machine: {machine} (load average at the end)",
        f"- Settings: batch {batch}, precision {precision}, "
        f"channels_last {'yes' if args.channels_last else 'no'}, "
        f"{warmup} warm-up and {steps} timed steps per measurement, {args.rounds} alternating rounds, "
        f"{seconds:.0f} s in all",
        f"- Command: `{command}`",
        "- zoo: `zoo_core.bench.throughput.benchmark_model` (inference_mode, median step). timm's method: "
        "the loop of timm's benchmark.py InferenceBenchmarkRunner (no_grad, images / wall time of the run), "
        "re-implemented in this script.",
        "",
        "| round | zoo img/s | timm method img/s | zoo / timm |",
        "|---:|---:|---:|---:|",
        *(
            f"| {i + 1} | {a:,.1f} | {b:,.1f} | {a / b:.3f} |"
            for i, (a, b) in enumerate(zip(ours, theirs, strict=True))
        ),
        f"| **median** | **{zoo_median:,.1f}** | **{timm_median:,.1f}** | **{ratio:.3f}** |",
        "",
        f"Verdict: zoo's figure is {(ratio - 1) * 100:+.1f}% from timm's method: "
        + ("within" if agree else "OUTSIDE")
        + f" the ±{TOLERANCE:.0%} agreement asked for.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
