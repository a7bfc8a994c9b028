"""A run whose parameter groups name their own optimizer (Muon on LeNet's conv filters, the recipe's SGD
on the rest) checkpoints every member: stopped by Ctrl-C mid-epoch and resumed, it ends bit-identical to a
run that was never stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
# features.0.weight (6, 1, 5, 5) and features.3.weight (16, 6, 5, 5): conv filters, so zoo's own Muon
GROUP = "features.*weight:optimizer=muon:ns_steps=3,momentum=0.8"
ARGS = ["train", "digits", "lenet", "--epochs", "2", "--batch-size", "64", "--no-tensorboard"]
ARGS += ["--log-every", "5", "--param-group", GROUP]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "ZOO_DEBUG": ""}

# `zoo ARGS`, with SIGINT sent to itself at the end of one optimizer step (argv[2])
DRIVER = r"""
import json, os, signal, sys
from zoo_core.cli import cli
from zoo_core.train.trainer import Trainer

args, at = json.loads(sys.argv[1]), int(sys.argv[2])
original_call = Trainer._call
def _call(self, event, *a):
    if event == "on_step_end" and self.step == at:
        os.kill(os.getpid(), signal.SIGINT)
    return original_call(self, event, *a)
Trainer._call = _call
sys.exit(cli.main(args, standalone_mode=False))
"""


def zoo(*args: str, stop_at: int | None = None) -> subprocess.CompletedProcess:
    command = ["-m", "zoo_core", *args] if stop_at is None else ["-c", DRIVER, json.dumps(args), str(stop_at)]
    return subprocess.run(
        [sys.executable, *command], capture_output=True, text=True, cwd=ROOT, env=ENV, timeout=600
    )


def test_a_run_with_muon_on_a_group_resumes_bit_identical(tmp_path):
    straight, cut = tmp_path / "straight", tmp_path / "cut"
    done = zoo(*ARGS, "--out", str(straight))
    assert done.returncode == 0, done.stderr
    stopped = zoo(*ARGS, "--out", str(cut), stop_at=30)  # 22 batches an epoch: 8 into the second
    assert stopped.returncode == 130, stopped.stderr
    state = torch.load(cut / "last.pt", weights_only=True)
    assert (state["epoch"], state["batch_in_epoch"]) == (1, 8)
    muon, sgd = state["optimizer"]["optimizers"]  # both members' states, Muon's momentum buffers included
    assert muon["param_groups"][0]["ns_steps"] == 3 and muon["param_groups"][0]["momentum"] == 0.8
    assert len(muon["state"]) == 2 and all("momentum_buffer" in s for s in muon["state"].values())
    assert len(sgd["param_groups"]) == 2
    resumed = zoo("train", "--resume", str(cut))
    assert resumed.returncode == 0, resumed.stderr
    a, b = load_file(str(straight / "model.safetensors")), load_file(str(cut / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert torch.load(cut / "last.pt", weights_only=True)["step"] == 44  # 2 × 22 steps, none twice
    assert [json.loads(x)["epoch"] for x in (cut / "metrics.jsonl").read_text().splitlines()] == [1, 2]
