"""Crashes: a CPU training run (digits, lenet, 3 epochs, batch 64) is killed with SIGKILL at seeded random
moments (at a step, inside a checkpoint write: mid-write, before the rename, after it, or after a random
delay), every checkpoint file left behind must be readable, and `zoo train --resume` must end with weights,
optimizer state and best weights bit-identical to an uninterrupted run.

One driver process imports torch and zoo once and forks a child per run, so a run costs its training only;
each child is as fresh as a new process for the Trainer (it seeds everything it uses and has run nothing)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

AREA = "crashes"
SEED = 20261126
TRIALS = 12
ARGS = [
    "train",
    "digits",
    "lenet",
    "--epochs",
    "3",
    "--batch-size",
    "64",
    "--log-every",
    "5",
    "--no-tensorboard",
]
STEPS = 66  # 3 epochs of 22 batches (1,437 training images at 64)

DRIVER = r"""
import json, os, signal, sys, time
from pathlib import Path

import torch

torch.set_num_threads(1)
from safetensors.torch import load_file

import zoo_core.train.checkpoint as ckpt
from zoo_core.catalog import get_catalog
from zoo_core.cli import cli
from zoo_core.train.trainer import Trainer

get_catalog().models.get("lenet").load()
get_catalog().datasets.get("digits").load()
import sklearn.datasets  # noqa: F401

base, args, plan = Path(sys.argv[1]), json.loads(sys.argv[2]), json.loads(sys.argv[3])


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def arm(trial, note):
    # installs the kill of one trial in the child, before the run starts
    mode = trial["mode"]
    if mode == "step":
        original = Trainer._call

        def _call(self, event, *a):
            if event == "on_step_end" and self.step == trial["step"]:
                note.write_text(json.dumps({"at": f"step {self.step} (epoch {self.epoch + 1})"}))
                die()
            return original(self, event, *a)

        Trainer._call = _call
    elif mode == "save":
        original = ckpt._write_atomically
        calls = [0]

        def wrapped(path, write, keep=None):
            calls[0] += 1
            if calls[0] != trial["write"]:
                return original(path, write, keep)
            note.write_text(json.dumps({"at": f"write #{calls[0]} ({Path(path).name}), {trial['phase']}"}))
            phase = trial["phase"]
            if phase == "mid-write":
                def partial(tmp):
                    write(tmp)
                    data = Path(tmp).read_bytes()
                    Path(tmp).write_bytes(data[: len(data) // 2])
                    die()
                return original(path, partial, keep)
            if phase == "before-rename":
                os.replace = lambda *a, **k: die()
            else:  # after the rename, before the folder is flushed
                ckpt._fsync_dir = lambda folder: die()
            return original(path, write, keep)

        ckpt._write_atomically = wrapped


def run_child(argv, trial=None, note=None, log=None):
    pid = os.fork()
    if pid == 0:
        fd = os.open(str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        if trial is not None:
            arm(trial, note)
        code = cli.main(argv, standalone_mode=False)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    if trial is not None and trial["mode"] == "timer":
        deadline = time.monotonic() + trial["delay"]
        while time.monotonic() < deadline:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return "finished before the kill"
            time.sleep(0.005)
        os.kill(pid, signal.SIGKILL)
        note.write_text(json.dumps({"at": f"{trial['delay']:.2f} s after the start"}))
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def readable(run):
    bad = []
    for name in ("last.pt", "model.safetensors", "best.safetensors"):
        path = run / name
        if not path.exists():
            continue
        try:
            if name.endswith(".pt"):
                torch.load(path, weights_only=True)
            else:
                load_file(str(path))
        except Exception as exc:
            bad.append(f"{name}: {type(exc).__name__}")
    return bad


def same(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def differences(run, straight):
    found = []
    for name in ("model.safetensors", "best.safetensors"):
        if not same(load_file(str(run / name)), load_file(str(straight / name))):
            found.append(name)
    s, r = (torch.load(p / "last.pt", weights_only=True) for p in (straight, run))
    for key in ("model", "optimizer", "scheduler", "epoch", "step", "best_acc", "rng_cpu"):
        if not same(s[key], r[key]):
            found.append(f"last.pt[{key}]")
    return found


straight = base / "straight"
start = time.monotonic()
code = run_child([*args, "--out", str(straight)], log=base / "straight.log")
seconds = time.monotonic() - start
assert code == 0, (base / "straight.log").read_text()[-2000:]
reference = torch.load(straight / "last.pt", weights_only=True)
lines = (straight / "metrics.jsonl").read_text().splitlines()
results = {
    "straight_seconds": seconds,
    "straight_epochs": [json.loads(line)["epoch"] for line in lines],
    "straight_step": int(reference["step"]),
    "trials": [],
}
for i, trial in enumerate(plan):
    if trial["mode"] == "timer":
        trial["delay"] = trial["fraction"] * seconds
    run, note, log = base / f"trial-{i}", base / f"trial-{i}.kill.json", base / f"trial-{i}.log"
    killed = run_child([*args, "--out", str(run)], trial, note, log)
    where = json.loads(note.read_text())["at"] if note.exists() else "-"
    unreadable = readable(run) if run.exists() else []
    leftovers = sorted(p.name for p in run.glob(".*.tmp")) if run.exists() else []
    resume = ["train", "--resume", str(run)] if (run / "config.json").exists() else [*args, "--out", str(run)]
    resumed = run_child(resume, log=log)
    diff = differences(run, straight) if resumed == 0 else ["no complete run"]
    after = sorted(p.name for p in run.glob(".*.tmp"))  # the resume clears what the killed run left
    epochs = []
    if (run / "metrics.jsonl").exists():
        epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    results["trials"].append(
        {
            **trial,
            "killed": killed,
            "at": where,
            "unreadable": unreadable,
            "leftover_temp_files": leftovers,
            "temp_files_after_resume": after,
            "resume_exit": resumed,
            "resume_log": log.read_text()[-600:] if resumed != 0 else "",
            "differences": diff,
            "metrics_epochs": epochs,
        }
    )
print(json.dumps(results))
"""


def plan(seed: int = SEED, trials: int = TRIALS) -> list[dict]:
    """Seeded kill moments: a third at a step, a third inside a checkpoint write (each phase), the rest after
    a random share of an uninterrupted run's time."""
    rng = random.Random(seed)
    phases = ["mid-write", "before-rename", "after-rename"]
    out = []
    for i in range(trials):
        mode = ("step", "save", "timer")[i % 3]
        if mode == "step":
            out.append({"mode": mode, "step": rng.randint(1, STEPS - 1)})
        elif mode == "save":  # 6 to 9 writes in 3 epochs: best (when it improves), model, last.pt
            out.append({"mode": mode, "write": rng.randint(1, 6), "phase": phases[(i // 3) % 3]})
        else:
            out.append({"mode": mode, "fraction": round(rng.uniform(0.2, 0.8), 3)})
    return out


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path: Path, ledger) -> None:
    trials = plan()
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(tmp_path), json.dumps(ARGS), json.dumps(trials)],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "OMP_NUM_THREADS": "1", "ZOO_DEBUG": ""},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    failures = []
    for trial in results["trials"]:
        problems = []
        if trial["killed"] != -9 and trial["mode"] != "timer":
            problems.append(f"not killed (exit {trial['killed']})")
        if trial["unreadable"]:
            problems.append(f"unreadable after the kill: {trial['unreadable']}")
        if trial["resume_exit"] != 0:
            problems.append(f"resume exit {trial['resume_exit']}: {trial['resume_log'][-300:]}")
        if trial["differences"]:
            problems.append(f"differs from the uninterrupted run: {trial['differences']}")
        if trial["temp_files_after_resume"]:
            problems.append(f"temporary files left after the resume: {trial['temp_files_after_resume']}")
        detail = (
            f"killed at {trial['at']}; resume exit {trial['resume_exit']}; "
            f"{'bit-identical' if not trial['differences'] else 'DIFFERS'}; "
            f"metrics.jsonl epochs {trial['metrics_epochs']}; "
            f"{len(trial['leftover_temp_files'])} temp file(s) left by the kill, "
            f"{len(trial['temp_files_after_resume'])} after the resume"
        )
        name = {
            "step": "SIGKILL at a step",
            "save": "SIGKILL inside a checkpoint write",
            "timer": "SIGKILL after a random delay",
        }[trial["mode"]]
        ledger.record(
            AREA, name, trial["at"], not problems, detail + ("; " + "; ".join(problems) if problems else "")
        )
        if problems:
            failures.append((trial["at"], problems))
    whole = results["straight_epochs"] == [1, 2, 3] and results["straight_step"] == STEPS
    ledger.record(
        AREA,
        "uninterrupted reference run",
        "digits/lenet, 3 epochs, batch 64, OMP_NUM_THREADS=1",
        whole,
        f"{results['straight_seconds']:.1f} s in a forked child; metrics.jsonl epochs "
        f"{results['straight_epochs']}, last.pt at step {results['straight_step']} of {STEPS}",
    )
    assert whole, "the reference run is not a whole 3-epoch run: nothing to compare the trials with"
    kills = sum(t["killed"] == -9 for t in results["trials"])
    assert kills >= 10, f"only {kills} runs were killed"
    assert not failures, failures
