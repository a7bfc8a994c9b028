"""Which precision, memory layout, compile and thread count train fastest on the CPU at hand.

    python benchmarks/cpu_kernels.py                      # → benchmarks/results/cpu-kernels-<capability>.md
    python benchmarks/cpu_kernels.py --models fastnet --no-compile --runs 3

For fastnet and resnet18 (CIFAR-10 size, random input): train-step img/s for each precision (fp32, bf16
autocast) × layout (contiguous, channels_last) × eager/compiled (inductor's C++ backend), then the best of
those at each thread count (1 … the logical cores). Beside each row: GFLOP/s (3 × forward FLOPs × img/s)
and its share of the machine's practical peak, measured in the same run as a large matmul in that precision.
For compiled rows the first step's seconds (the compilation) are reported, and the seconds a 10-epoch
fastnet run (490 steps of 1,024 images) would take, compilation included, decide whether compile pays.
Each configuration is built once, then timed in ``--rounds`` round-robin rounds (warm-up, then the
median of ``--runs`` steps); the median round counts. The CPU's model and capability are named.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# a compiled row's first step is a cold compilation, as a user's first run has it: no inductor cache
os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="zoo-cpu-kernels-inductor-")

import torch
import torch.nn.functional as F

from zoo_core import create_model
from zoo_core.bench import describe_machine
from zoo_core.bench.report import cpu_name
from zoo_core.bench.throughput import count_flops
from zoo_core.device import cpu_capability, physical_cores, probe_hardware

RESULTS = Path(__file__).resolve().parent / "results"
DTYPES = {"fp32": None, "bf16": torch.bfloat16}
FASTNET_RUN_IMAGES = 10 * 49 * 1024  # fastnet's recipe: 10 epochs of 49 batches of 1,024


def matmul_peak(dtype: torch.dtype, size: int, runs: int) -> float:
    """GFLOP/s of a size×size matmul in ``dtype``, median of ``runs`` after one warm-up."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    a @ b
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


class Config:
    """One model in one precision × layout × compile setting, built once and timed in several rounds."""

    def __init__(self, name: str, *, precision: str, channels_last: bool, compiled: bool, batch: int):
        self.row = {
            "model": name,
            "precision": precision,
            "layout": "channels_last" if channels_last else "contiguous",
            "compile": compiled,
            "threads": torch.get_num_threads(),
        }
        torch.manual_seed(0)
        model = create_model(name, num_classes=10)
        self.x = torch.randn(batch, 3, 32, 32)
        self.y = torch.randint(0, 10, (batch,))
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        model.train()
        self.optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, nesterov=True)
        self.forward = torch.compile(model) if compiled else model
        self.dtype = DTYPES[precision]
        self.rounds: list[float] = []
        start = time.perf_counter()
        self.step()  # compiled: the compilation
        self.row["first_step_s"] = time.perf_counter() - start

    def step(self) -> None:
        with torch.autocast("cpu", dtype=self.dtype or torch.float32, enabled=self.dtype is not None):
            loss = F.cross_entropy(self.forward(self.x).float(), self.y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def time_round(self, warmup: int, runs: int) -> None:
        for _ in range(warmup):
            self.step()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            self.step()
            times.append(time.perf_counter() - start)
        self.rounds.append(statistics.median(times))

    def result(self) -> dict:
        seconds = statistics.median(self.rounds)
        batch = self.x.shape[0]
        return {**self.row, "step_s": seconds, "img_per_s": batch / seconds, "rounds_s": self.rounds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["fastnet", "resnet18"])
    parser.add_argument("--precisions", nargs="+", default=list(DTYPES), choices=list(DTYPES))
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before each round")
    parser.add_argument("--runs", type=int, default=2, help="timed steps of a round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all configurations")
    parser.add_argument("--no-compile", action="store_true", help="eager rows only")
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--output", type=Path, help="default: results/cpu-kernels-<capability>.md")
    args = parser.parse_args()
    batch = args.batch_size

    capability = cpu_capability()
    hardware = probe_hardware("cpu")
    output = args.output or RESULTS / f"cpu-kernels-{capability.lower()}.md"
    default_threads = torch.get_num_threads()
    doc: dict = {
        "cpu": cpu_name(),
        "capability": capability,
        "native_bf16": hardware.native_bf16,
        "physical_cores": physical_cores(),
        "logical_cores": os.cpu_count(),
        "torch_threads_default": default_threads,
        "machine": describe_machine("cpu"),
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "batch_size": args.batch_size,
        "peak_gflops": {},
        "rows": [],
        "threads": [],
    }

    def save() -> None:  # after every row: a cut run keeps what it measured
        output.parent.mkdir(parents=True, exist_ok=True)
        output.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
        output.write_text(render(doc))

    for precision in args.precisions:
        dtype = DTYPES[precision] or torch.float32
        doc["peak_gflops"][precision] = matmul_peak(dtype, args.matmul_size, runs=5)
        print(f"peak {precision}: {doc['peak_gflops'][precision]:.0f} GFLOP/s", file=sys.stderr)
    flops = {name: count_flops(create_model(name, num_classes=10), 3) for name in args.models}
    settings = [
        (precision, channels_last, compiled)
        for precision in args.precisions
        for channels_last in (False, True)
        for compiled in ((False,) if args.no_compile else (False, True))
    ]
    for name in args.models:
        configs = []
        for precision, channels_last, compiled in settings:
            torch._dynamo.reset()
            configs.append(
                Config(name, precision=precision, channels_last=channels_last, compiled=compiled, batch=batch)
            )
            print(f"built {configs[-1].row}", file=sys.stderr)
        # round-robin, so that other work on the machine slows every configuration alike
        for _ in range(args.rounds):
            for config in configs:
                config.time_round(args.warmup, args.runs)
        for config in configs:
            row = config.result()
            gflops = 3 * flops[name] * row["img_per_s"] / 1e9
            row.update(gflops=gflops, peak_share=gflops / doc["peak_gflops"][row["precision"]])
            compile_s = row["first_step_s"] - row["step_s"] if row["compile"] else 0.0
            row["fastnet_run_s"] = FASTNET_RUN_IMAGES / row["img_per_s"] + compile_s
            doc["rows"].append(row)
            print(json.dumps(row), file=sys.stderr)
        save()
        # the best configuration of this model at each thread count
        best = max(configs, key=lambda c: c.result()["img_per_s"])
        del configs
        for threads in sorted({1, physical_cores(), os.cpu_count() or 1}):
            torch.set_num_threads(threads)
            best.row["threads"] = threads
            best.rounds = []
            for _ in range(args.rounds):
                best.time_round(args.warmup, args.runs)
            doc["threads"].append(best.result())
            print(json.dumps(doc["threads"][-1]), file=sys.stderr)
            save()
        torch.set_num_threads(default_threads)
    doc["machine_after"] = describe_machine("cpu")
    save()
    print(f"wrote {output}", file=sys.stderr)


def render(doc: dict) -> str:
    lines = [
        f"# CPU kernels: {doc['cpu']} ({doc['capability']})",
        "",
        f"- Capability: **{doc['capability']}** (native bf16: {'yes' if doc['native_bf16'] else 'no'}); "
        f"{doc['physical_cores']} physical / {doc['logical_cores']} logical cores; torch's default "
        f"{doc['torch_threads_default']} threads.",
        f"- Machine: {doc['machine']}",
        f"- Command: `{doc['command']}`",
        "- Practical peak (a 2048² matmul, median of 5): "
        + ", ".join(f"{p} {g:.0f} GFLOP/s" for p, g in doc["peak_gflops"].items()),
        f"- After the run: {doc.get('machine_after', '(cut short)')}",
        f"- Train step: batch {doc['batch_size']}, 3×32×32 random input, SGD. Each configuration is built "
        "(and compiled) once, then timed in rounds that visit every configuration in turn (so other work "
        "slows all alike): per round the median of the timed steps after warm-up, then the median of the "
        "rounds. GFLOP/s = 3 × forward FLOPs × img/s; 'of peak': against the matmul peak of the "
        "same precision. '10-epoch fastnet': 501,760 images at this rate, plus the compilation.",
        "",
        "| model | precision | layout | compile | img/s | GFLOP/s | of peak | first step s | "
        "10-epoch fastnet min |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in doc["rows"]:
        if "error" in r:
            lines.append(
                f"| {r['model']} | {r['precision']} | {r['layout']} | {'yes' if r['compile'] else 'no'} "
                f"| error: {r['error']} | | | | |"
            )
            continue
        lines.append(
            f"| {r['model']} | {r['precision']} | {r['layout']} | {'yes' if r['compile'] else 'no'} | "
            f"{r['img_per_s']:.0f} | {r['gflops']:.1f} | {r['peak_share']:.1%} | {r['first_step_s']:.1f} | "
            + (f"{r['fastnet_run_s'] / 60:.1f} |" if r["model"] == "fastnet" else " |")
        )
    if doc["threads"]:
        lines += ["", "Threads (each model's best configuration above):", ""]
        lines += ["| model | configuration | threads | img/s |", "|---|---|---:|---:|"]
        for r in doc["threads"]:
            config = f"{r['precision']}, {r['layout']}, {'compiled' if r['compile'] else 'eager'}"
            lines.append(f"| {r['model']} | {config} | {r['threads']} | {r['img_per_s']:.0f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
