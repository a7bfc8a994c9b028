"""fastnet on CIFAR-10 through the ordinary `zoo train`: seeds and an ablation of its recipe's techniques.

    python benchmarks/fastnet.py --data-dir DATA --work /tmp/fastnet [--jobs 2 --threads 1] \
        [--variants full:0,full:1,full:2,lookahead:0,...] --output benchmarks/results/fastnet-cpu.md

Each variant is `zoo train cifar10 fastnet --data-dir DATA --seed S` plus the options that change one
technique of the recipe; the table reads each run's metrics.jsonl (final test top-1 plain and with TTA,
wall time).
``--jobs 2 --threads 1`` runs two single-threaded trainings side by side on a 2-core machine (the same
total throughput, steadier when other work shares the machine); the wall time of the recipe itself is the
``--jobs 1`` figure with the default threads. A run killed half-way resumes exactly on the next call;
``--cached-only`` reports the finished runs and starts none. ``--copy`` says what DATA holds (the original
pixels by default; ``jpeg`` for the older JPEG q75 copy), and the table's title says it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# the SGD recipe before Muon (10 epochs at batch 1,024 with lookahead averaging), here cut to 8 epochs
PREVIOUS_SGD_RECIPE = [
    *["--batch-size", "1024", "--lr", "1.5", "--weight-decay", "0.00133"],
    *["--schedule", "linear:warmup=0.23,start=0.2,end=0.07", "--eval-every", "0"],
    *["--ema", "0.7737809375", "--ema-every", "5", "--ema-warmup", "3", "--ema-mode", "lookahead"],
    *["--param-group", "*.norm*.bias:lr_scale=64,weight_decay_scale=0.015625"],
    *["--param-group", "whiten.bias:epochs=3"],
]
# airbench94_muon's own batch of 2,000 (its lr and decay per step: Muon lr 0.24, decay 0.004)
BATCH_2000 = [
    *["--batch-size", "2000", "--weight-decay", "0.0025"],
    "--param-group",
    "whiten.bias:epochs=3,lr_scale=64,weight_decay_scale=0.015625",
    "--param-group",
    "*.norm*.bias:lr_scale=64,weight_decay_scale=0.015625",
    "--param-group",
    "block*.conv*.weight:lr_scale=0.15,weight_decay_scale=0,optimizer=muon:momentum=0.6,nesterov=true,"
    "ns_steps=3,normalize=true",
]
LOOKAHEAD = ["--ema", "0.7737809375", "--ema-every", "5", "--ema-warmup", "3", "--ema-mode", "lookahead"]

# variant → (what it changes, the options that change it)
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "full": ("nothing: the whole recipe", []),
    "sgd-8-epochs": (
        "Muon → the previous SGD recipe (batch 1,024, lookahead), 8 epochs",
        PREVIOUS_SGD_RECIPE,
    ),
    "batch-2000": ("batch 1,000 → airbench94_muon's 2,000 (its lr and decay per step)", BATCH_2000),
    "lookahead": ("no averaging → lookahead averaging (the SGD recipe's)", LOOKAHEAD),
    "eval-every-epoch": ("evaluation after the last epoch only → after every epoch", ["--eval-every", "1"]),
    "no-data-init": ("whitening filters from the data → a random stem", ["--no-data-init"]),
    "random-flip": ("alternating flip → random flips", ["--random-flip"]),
    "no-label-smoothing": ("label smoothing 0.2 → none", ["--label-smoothing", "0"]),
    "zero-padding": ("reflect padding of the random crop → zeros", ["--padding-mode", "constant"]),
}


def run(
    variant: str, seed: int, data_dir: str, work: Path, threads: int | None, cached_only: bool = False
) -> dict | None:
    out = work / f"{variant}-seed{seed}"
    metrics_file = out / "metrics.jsonl"
    config_file = out / "config.json"
    epochs = json.loads(config_file.read_text())["epochs"] if config_file.exists() else None
    finished = metrics_file.exists() and len(metrics_file.read_text().splitlines()) == epochs
    if not finished and cached_only:
        return None
    if not finished:
        env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
        command = [sys.executable, "-m", "zoo_core", "train", "cifar10", "fastnet", "--data-dir", data_dir]
        command += ["--seed", str(seed), "--out", str(out), "--no-tensorboard", *VARIANTS[variant][1]]
        if (out / "last.pt").exists():
            command = [sys.executable, "-m", "zoo_core", "train", "--resume", str(out)]
        started = time.perf_counter()
        subprocess.run(command, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        print(f"{variant} seed {seed}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    lines = [json.loads(line) for line in metrics_file.read_text().splitlines()]
    last = lines[-1]
    return {
        "variant": variant,
        "seed": seed,
        "epochs": last["epoch"],
        "val_acc": last["val_acc"],
        "tta_acc": last.get("tta_acc"),
        "time_s": last["time_s"],
    }


COPIES = {"original": "CIFAR-10, original pixels", "jpeg": "CIFAR-10 (JPEG q75 copy)"}


def machine() -> str:
    """The CPU's model and capability (AVX2 / AVX512 / AMX …), cores, torch."""
    from zoo_core.bench.report import cpu_name
    from zoo_core.device import cpu_capability

    return (
        f"{cpu_name()} ({cpu_capability()}), {os.cpu_count()} CPU cores, no GPU; "
        f"torch {__import__('torch').__version__}, {platform.system()}"
    )


def report(rows: list[dict], args: argparse.Namespace) -> str:
    lines = [
        f"# fastnet on {COPIES[args.copy]}, `zoo train cifar10 fastnet`",
        "",
        f"Machine: {machine()}. Command: `python benchmarks/fastnet.py "
        f"--data-dir DATA --copy {args.copy} --jobs {args.jobs} --threads {args.threads or 'default'} "
        f"--variants {args.variants}`. ",
        "Test top-1 on the 10,000 test images after the last epoch; `TTA` is the recipe's flip-translate "
        "evaluation, the recipe's final score. Time: wall seconds of `fit` (training, the evaluations the "
        "variant asks for, the final TTA evaluation), with the runs side by side as stated.",
        "",
        "| variant | changes | seed | epochs | top-1 | top-1 with TTA | time (s) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        tta = f"{r['tta_acc']:.2%}" if r["tta_acc"] is not None else "-"
        removes = VARIANTS[r["variant"]][0]
        lines.append(
            f"| {r['variant']} | {removes} | {r['seed']} | {r['epochs']} | {r['val_acc']:.2%} | {tta} | "
            f"{r['time_s']:.0f} |"
        )
    lines += [
        "",
        "| variant | runs | mean top-1 with TTA | min | mean top-1 without TTA |",
        "|---|---:|---:|---:|---:|",
    ]
    for variant in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == variant]
        tta = [r["tta_acc"] for r in mine]
        plain = statistics.mean(r["val_acc"] for r in mine)
        lines.append(
            f"| {variant} | {len(mine)} | {statistics.mean(tta):.2%} | {min(tta):.2%} | {plain:.2%} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/fastnet-runs"))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS of each run")
    parser.add_argument("--variants", default="full:0,full:1,full:2")
    parser.add_argument("--copy", choices=list(COPIES), default="original", help="what DATA holds")
    parser.add_argument("--cached-only", action="store_true", help="report the finished runs; start none")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    plan = [(v, int(s)) for v, _, s in (item.partition(":") for item in args.variants.split(","))]
    for variant, _ in plan:
        if variant not in VARIANTS:
            parser.error(f"unknown variant {variant!r} (known: {', '.join(VARIANTS)})")
    with ThreadPoolExecutor(args.jobs) as pool:
        found = pool.map(lambda p: run(*p, args.data_dir, args.work, args.threads, args.cached_only), plan)
        rows = [row for row in found if row is not None]
    if not rows:
        sys.exit("fastnet.py: no finished run to report")
    text = report(rows, args)
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
