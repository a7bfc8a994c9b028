"""Preemption on a CPU: what a stop signal and a kill -9 cost, and what a mid-epoch snapshot costs.

    python benchmarks/preemption.py [--trials 4] [--data-dir /tmp/zoo-data]
        [--output benchmarks/results/preemption-cpu.md]

1. Trials on digits/lenet (the cheap real data set, 22 steps an epoch): `zoo train` runs as a real process
   (``--log-every 1``: a progress line per step says how far it got), a SIGTERM or a kill -9 arrives at a
   seeded random moment of its training, then the same command runs again. Every trial must end with
   weights bit-identical to an uninterrupted run. Steps lost: the last step a progress line showed minus
   the step the second command continued from (a lower bound for a kill, which may land before a line is
   written). One process, and two gloo ranks under torchrun: SIGTERM to the agent, and one worker killed
   under ``--max-restarts 1`` (torchrun restarts both and they continue by themselves).
2. Snapshot cost, fastnet and resnet18 on CIFAR-10 (``--data-dir``): the stall (the state copied to fresh
   host memory, on the training thread), the background write, and the step time while a write runs
   against the step time without one, interleaved; from these, the overhead at an interval.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS_PER_EPOCH = 22
EPOCHS = 10
ARGS = ["train", "digits", "lenet", "--epochs", str(EPOCHS), "--batch-size", "64", "--no-tensorboard"]
ARGS += ["--log-every", "1", "--precision", "fp32"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "ZOO_DEBUG": ""}
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]


class Watched:
    """A command whose stderr is read line by line as it runs; ``training`` is set at its first step."""

    def __init__(self, command: list[str]) -> None:
        self.proc = subprocess.Popen(
            command, cwd=ROOT, env=ENV, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
        )
        self.lines: list[str] = []
        self.training = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)
            if " step " in line:
                self.training.set()
        self.training.set()

    def wait(self) -> int:
        code = self.proc.wait(timeout=900)
        self.reader.join()
        return code


def last_step(lines: list[str]) -> int:
    """The last optimizer step a progress line showed."""
    for line in reversed(lines):
        found = re.match(r"epoch (\d+)/\d+\s+step (\d+)/(\d+)", line)
        if found:
            return (int(found.group(1)) - 1) * int(found.group(3)) + int(found.group(2))
    return 0


def zoo(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "zoo_core", *args]


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def same_weights(a: Path, b: Path) -> bool:
    import torch
    from safetensors.torch import load_file

    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def trial(kind: str, base: Path, index: int, delay: float, straight: Path, ranks: int) -> dict:
    run = base / f"{kind}-{ranks}-{index}"
    extra = ["--out", str(run), "--save-every", "5"]
    launch = (lambda a: [*TORCHRUN, "--max-restarts", "1", "-m", "zoo_core", *a]) if ranks > 1 else zoo
    first = Watched(launch([*ARGS, *extra]))
    first.training.wait(timeout=300)
    time.sleep(delay)
    if kind == "sigterm":
        first.proc.send_signal(signal.SIGTERM)  # under torchrun: to the agent, which forwards it
    elif ranks > 1:
        workers = children(first.proc.pid)
        os.kill(max(workers), signal.SIGKILL)  # one worker; torchrun restarts both
    else:
        first.proc.send_signal(signal.SIGKILL)
    code = first.wait()
    said = [i for i, line in enumerate(first.lines) if "continuing" in line]  # torchrun's restart
    shown = last_step(first.lines[: said[0]] if said else first.lines)
    row = {"kind": kind, "ranks": ranks, "delay_s": round(delay, 3), "exit": code, "last_shown": shown}
    lines = first.lines
    if not said:
        second = Watched(launch([*ARGS, *extra]))
        row["second_exit"] = second.wait()
        lines = second.lines
    line = next((line for line in lines if "continuing" in line), "")
    found = re.search(r"step (\d+)\s*$", line)
    resumed = int(found.group(1)) if found else (0 if "from the start" in line else None)
    row["resumed_from"] = resumed
    row["steps_lost"] = None if resumed is None else max(0, shown - resumed)
    row["bit_identical"] = (run / "model.safetensors").exists() and same_weights(run, straight)
    return row


def trials(args: argparse.Namespace, base: Path) -> tuple[list[dict], dict]:
    rng = random.Random(args.seed)
    references, times = {}, {}
    for ranks in (1, 2):
        run = base / f"straight-{ranks}"
        command = [*ARGS, "--out", str(run), "--save-every", "off"]
        start = time.perf_counter()
        done = Watched(zoo(command) if ranks == 1 else [*TORCHRUN, "-m", "zoo_core", *command])
        done.training.wait(timeout=300)
        training_start = time.perf_counter()
        assert done.wait() == 0, "".join(done.lines[-20:])
        references[ranks], times[ranks] = run, time.perf_counter() - training_start
        print(f"uninterrupted, {ranks} rank(s): {time.perf_counter() - start:.1f} s", file=sys.stderr)
    rows = []
    plan = [(k, 1) for k in ("sigterm", "kill -9") for _ in range(args.trials)]
    plan += [("sigterm", 2)] * max(1, args.trials // 2) + [("kill -9", 2)]
    for index, (kind, ranks) in enumerate(plan):
        delay = rng.uniform(0.1, 0.6) * times[ranks]
        row = trial(kind, base, index, delay, references[ranks], ranks)
        print(json.dumps(row), file=sys.stderr)
        rows.append(row)
    return rows, times


def snapshot_cost(model: str, data_dir: str, repeats: int) -> dict:
    """Stall, write and step times of one model's --save-every snapshot, medians of ``repeats``."""
    import torch

    from zoo_core.train import checkpoint
    from zoo_core.train.config import TrainConfig
    from zoo_core.train.periodic_save import PeriodicSaver, host_copy
    from zoo_core.train.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(dataset="cifar10", model=model, epochs=1, batch_size=128, data_dir=data_dir)
        trainer = Trainer(cfg, Path(tmp) / "run", save_every="off")
        trainer.started = time.perf_counter()
        batches = trainer.train_loader.iter_from(0)
        x, y = next(batches)
        saver, path = PeriodicSaver("1"), Path(tmp) / "run" / checkpoint.TRAINING_STATE

        def step() -> float:
            start = time.perf_counter()
            trainer.train_step(x, y)
            return time.perf_counter() - start

        for _ in range(3):  # warm-up
            step()
        stalls, writes, plain, during = [], [], [], []
        for _ in range(repeats):
            plain += [step() for _ in range(2)]
            start = time.perf_counter()
            state = host_copy(trainer.state())
            stalls.append(time.perf_counter() - start)

            def write(state: dict = state) -> None:
                start = time.perf_counter()
                checkpoint.save_state(path, state)
                writes.append(time.perf_counter() - start)

            saver.submit(write)
            while saver.thread.is_alive():
                during.append(step())
            saver.wait()
        size = path.stat().st_size
        params = sum(p.numel() for p in trainer.model.parameters())
    median = statistics.median
    return {
        "model": model,
        "params": params,
        "state_mb": round(size / 1e6, 1),
        "stall_s": median(stalls),
        "write_s": median(writes),
        "step_s": median(plain),
        "step_during_write_s": median(during) if during else None,
        "steps_during_write": round(len(during) / repeats, 1),
        "stalls": [round(s, 4) for s in stalls],
        "writes": [round(w, 3) for w in writes],
        "torch_threads": torch.get_num_threads(),
        "precision": trainer.precision.precision,
    }


def overhead(cost: dict, interval_s: float) -> float:
    """Share of training time one snapshot per ``interval_s`` costs: the stall plus the slowdown of the
    steps that run during the write."""
    slower = 0.0
    if cost["step_during_write_s"] is not None:
        slower = (cost["step_during_write_s"] - cost["step_s"]) * cost["steps_during_write"]
    return (cost["stall_s"] + max(0.0, slower)) / interval_s


def report(rows: list[dict], times: dict, costs: list[dict], machine: str) -> str:
    out = ["# Preemption on a CPU: stop signals, kill -9, mid-epoch snapshots", ""]
    stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    out += [f"Generated by `python benchmarks/preemption.py` on {stamp} UTC."]
    out += [f"Machine: {machine}.", ""]
    out += ["## Trials: digits/lenet, the same command run again after the interruption", ""]
    out += [
        f"{EPOCHS} epochs of {STEPS_PER_EPOCH} steps, batch 64, fp32, `--save-every 5` (steps), "
        "`--log-every 1`; "
        f"uninterrupted training time {times[1]:.1f} s (one process), {times[2]:.1f} s (two gloo ranks). "
        "The moment is uniform in 10–60% of that training time (seeded); a run that finished before it is "
        "listed as such and not counted.",
        "",
        "| trials | ranks | interruption | bit-identical | steps lost (each) |",
        "|---|---:|---|---:|---|",
    ]
    groups: dict[tuple[str, int], list[dict]] = {}
    for row in rows:
        if row["last_shown"] < EPOCHS * STEPS_PER_EPOCH:  # interrupted before its last step
            groups.setdefault((row["kind"], row["ranks"]), []).append(row)
    finished = sum(row["last_shown"] >= EPOCHS * STEPS_PER_EPOCH for row in rows)
    for (kind, ranks), group in groups.items():
        how = {
            ("sigterm", 1): "SIGTERM to zoo",
            ("kill -9", 1): "kill -9 of zoo",
            ("sigterm", 2): "SIGTERM to the torchrun agent",
            ("kill -9", 2): "kill -9 of one worker, --max-restarts 1",
        }[kind, ranks]
        same = sum(r["bit_identical"] for r in group)
        lost = ", ".join(str(r["steps_lost"]) for r in group)
        out.append(f"| {len(group)} | {ranks} | {how} | {same}/{len(group)} | {lost} |")
    out += ["", f"Runs that finished before the signal came (not counted): {finished}."]
    out += ["", "Raw rows:", "", "```"] + [json.dumps(r) for r in rows] + ["```", ""]
    out += ["## Snapshot cost: CIFAR-10, batch 128, the recipe's precision (`auto`) on this CPU", ""]
    out += [
        "Stall: the training thread copying the state (model, optimizer, schedule, RNG) to fresh host "
        "memory. "
        "Write: the background thread's torch.save, fsync and rename. The steps run while the write is under "
        "way are interleaved with plain steps, so both share the machine's load. Overhead at an interval: "
        "(stall + slowdown of the steps during the write) / interval, an estimate from these medians; the "
        "slowdown is within the noise of a shared 2-core machine, so the last column bounds it instead: the "
        "stall and the whole write as if training stood still for both, once per 5 minutes (the default).",
        "",
        "| model | params | state | stall | write | step | step during write | overhead, 1 min | 10 min "
        "| bound, 5 min |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in costs:
        during = f"{c['step_during_write_s']:.3f} s" if c["step_during_write_s"] is not None else "-"
        out.append(
            f"| {c['model']} | {c['params'] / 1e6:.1f} M | {c['state_mb']} MB | {c['stall_s']:.3f} s | "
            f"{c['write_s']:.2f} s | {c['step_s']:.3f} s | {during} | {overhead(c, 60):.2%} | "
            f"{overhead(c, 600):.3%} | {(c['stall_s'] + c['write_s']) / 300:.2%} |"
        )
    worst = max(costs, key=lambda c: c["stall_s"] + c["write_s"])
    out += [
        "",
        f"The default, `--save-every 5m`: the longest stall is {worst['stall_s']:.2f} s (goal ≤ 1 s) and "
        f"the bound {(worst['stall_s'] + worst['write_s']) / 300:.2%} (goal ≤ 1%); once a minute the bound "
        f"would be {(worst['stall_s'] + worst['write_s']) / 60:.2%} for {worst['model']}.",
    ]
    out += ["", "Raw rows:", "", "```"] + [json.dumps(c) for c in costs] + ["```", ""]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4, help="SIGTERM and kill -9 trials each, one process")
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--data-dir", default="/tmp/zoo-data", help="a root holding cifar-10-batches-py")
    parser.add_argument("--repeats", type=int, default=5, help="snapshots measured per model")
    parser.add_argument("--output", default=str(ROOT / "benchmarks/results/preemption-cpu.md"))
    args = parser.parse_args()
    from zoo_core.bench import describe_machine

    with tempfile.TemporaryDirectory() as tmp:
        rows, times = trials(args, Path(tmp))
    costs = [snapshot_cost(model, args.data_dir, args.repeats) for model in ("fastnet", "resnet18")]
    text = report(rows, times, costs, describe_machine("cpu"))
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
