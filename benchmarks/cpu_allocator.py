"""What glibc's malloc settings cost a CPU train step: its defaults against zoo's (zoo_core.allocator).

    python benchmarks/cpu_allocator.py                    # → benchmarks/results/cpu-allocator-<capability>.md
    python benchmarks/cpu_allocator.py --data-dir DATA    # and one epoch of `zoo train cifar10 fastnet` each

A setting lasts for the life of a process, so every measurement is a fresh interpreter: ``system`` runs with
``ZOO_MALLOC=system`` (glibc's defaults), ``zoo`` as zoo train and zoo bench run on a CPU. The two alternate
for ``--rounds`` rounds; the median round counts. The bare step: a model's train step (random CIFAR-sized
input, SGD, the precision ``--precision auto`` picks here, channels_last) timed after warm-up, median of
``--steps``; with it the process's user and system CPU seconds and its peak RSS. With ``--data-dir`` also
one epoch of ``zoo train cifar10 fastnet`` (the recipe, seed 0): the training img/s it reports and its
whole run time. The CPU's model and capability are named.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SETTINGS = ("system", "zoo")
MODELS = {"fastnet": 1024, "resnet18": 256}  # the batch of each model's CIFAR-10 recipe (resnet18: 512 → 256)


def step_worker(name: str, batch: int, steps: int, warmup: int) -> dict:
    """In this process: train steps of ``name``; img/s (median), CPU seconds, peak RSS."""
    import torch
    import torch.nn.functional as F

    from zoo_core import create_model
    from zoo_core.allocator import keep_freed_memory
    from zoo_core.device import pick_precision

    keep_freed_memory()  # a no-op under ZOO_MALLOC=system: glibc's defaults
    precision, dtype, _ = pick_precision("auto", torch.device("cpu"))
    model = create_model(name, num_classes=10).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
    x = torch.randn(batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            loss = F.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "img_per_s": batch / statistics.median(times),
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "precision": precision.precision,
    }


def run_step(setting: str, name: str, batch: int, steps: int, warmup: int) -> dict:
    env = {**os.environ, "ZOO_MALLOC": setting}
    code = (
        "import json, sys; sys.path.insert(0, 'benchmarks'); from cpu_allocator import step_worker; "
        f"print(json.dumps(step_worker({name!r}, {batch}, {steps}, {warmup})))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    if out.returncode:
        sys.exit(out.stderr)
    return json.loads(out.stdout.splitlines()[-1])


def run_epoch(setting: str, data_dir: Path) -> dict:
    """One epoch of `zoo train cifar10 fastnet` (seed 0): its training img/s and the run's seconds."""
    env = {**os.environ, "ZOO_MALLOC": setting}
    with tempfile.TemporaryDirectory(prefix="zoo-allocator-") as tmp:
        command = [sys.executable, "-m", "zoo_core", "train", "cifar10", "fastnet"]
        command += ["--data-dir", str(data_dir), "--epochs", "1", "--seed", "0"]
        command += ["--out", f"{tmp}/run", "--no-tensorboard"]
        start = time.perf_counter()
        subprocess.run(command, env=env, cwd=ROOT, check=True, capture_output=True)
        wall = time.perf_counter() - start
        metrics = json.loads(Path(f"{tmp}/run/metrics.jsonl").read_text().splitlines()[-1])
    return {"img_per_s": metrics["img_per_s"], "run_s": metrics["time_s"], "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, help="also one epoch of zoo train cifar10 fastnet each")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()

    from zoo_core.bench import describe_machine
    from zoo_core.bench.report import cpu_name
    from zoo_core.device import cpu_capability

    capability = cpu_capability()
    output = args.output or RESULTS / f"cpu-allocator-{capability.lower()}.md"
    doc = {
        "cpu": cpu_name(),
        "capability": capability,
        "machine": describe_machine("cpu"),
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "rounds": args.rounds,
        "steps": args.steps,
        "rows": [],
    }
    for name in args.models:
        runs: dict[str, list[dict]] = {s: [] for s in SETTINGS}
        for _ in range(args.rounds):
            for setting in SETTINGS:
                runs[setting].append(run_step(setting, name, MODELS[name], args.steps, args.warmup))
                print(name, setting, json.dumps(runs[setting][-1]), file=sys.stderr, flush=True)
        for setting in SETTINGS:
            row = {"what": f"{name} train step, batch {MODELS[name]}", "setting": setting}
            row["precision"] = runs[setting][0]["precision"]
            for key in ("img_per_s", "user_s", "sys_s", "peak_rss_mb"):
                row[key] = statistics.median(r[key] for r in runs[setting])
            row["rounds"] = [round(r["img_per_s"]) for r in runs[setting]]
            doc["rows"].append(row)
        write(doc, output)
    if args.data_dir:
        for setting in SETTINGS:  # one each: an epoch is a minute or two
            result = run_epoch(setting, args.data_dir)
            print("epoch", setting, json.dumps(result), file=sys.stderr, flush=True)
            what = "zoo train cifar10 fastnet, 1 epoch (CIFAR-10 original pixels)"
            doc["rows"].append({"what": what, "setting": setting, **result})
            write(doc, output)
    print(f"wrote {output}", file=sys.stderr)


def write(doc: dict, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    output.write_text(render(doc))


def render(doc: dict) -> str:
    lines = [
        f"# glibc malloc's defaults against zoo's setting: {doc['cpu']} ({doc['capability']})",
        "",
        f"- Machine: {doc['machine']}",
        f"- Command: `{doc['command']}`",
        "- `system`: glibc's defaults (`ZOO_MALLOC=system`); `zoo`: `zoo_core.allocator.keep_freed_memory` "
        "(mmap threshold 1 GiB, no trimming), as `zoo train` and `zoo bench` set it on a CPU. Each "
        f"measurement is a fresh process; the settings alternate for {doc['rounds']} rounds and the median "
        f"round counts (train steps: warm-up, then the median of {doc['steps']} steps; CPU seconds and peak "
        "RSS of the whole process).",
        "",
    ]
    steps = [r for r in doc["rows"] if "user_s" in r]
    if steps:
        lines += [
            "| what | precision | setting | img/s | rounds | user s | system s | peak RSS MB |",
            "|---|---|---|---:|---|---:|---:|---:|",
        ]
        for r in steps:
            lines.append(
                f"| {r['what']} | {r['precision']} | {r['setting']} | {r['img_per_s']:.0f} | "
                f"{', '.join(map(str, r['rounds']))} | {r['user_s']:.1f} | {r['sys_s']:.1f} | "
                f"{r['peak_rss_mb']:.0f} |"
            )
    epochs = [r for r in doc["rows"] if "run_s" in r]
    if epochs:
        lines += [
            "",
            "| what | setting | training img/s | run s (time_s) | process wall s |",
            "|---|---|---:|---:|---:|",
        ]
        for r in epochs:
            lines.append(
                f"| {r['what']} | {r['setting']} | {r['img_per_s']:.0f} | {r['run_s']:.1f} | "
                f"{r['wall_s']:.1f} |"
            )
    speedups = []
    for what in dict.fromkeys(r["what"] for r in doc["rows"]):
        by = {r["setting"]: r for r in doc["rows"] if r["what"] == what}
        if set(by) == set(SETTINGS):
            speedups.append(f"- {what}: {by['zoo']['img_per_s'] / by['system']['img_per_s']:.2f}× img/s")
    if speedups:
        lines += ["", "zoo's setting against glibc's defaults:", "", *speedups]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
