"""Distributed training: two CPU processes under torchrun (gloo) hold identical weights, equal to one process
training with the same global batch (the loader's strided sharding makes the global batches the same)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
WORKER = """
import os, sys
from pathlib import Path
import torch
from zoo_core.train.trainer import Trainer
from zoo_core.train.config import TrainConfig

# fp32 named: under torchrun conftest's fake AVX2 CPU does not apply, and `auto` would pick bf16 on a CPU
# with native bf16, where two ranks' averaged gradients and one process's differ in the last bf16 bits
cfg = TrainConfig(dataset="digits", model="lenet", epochs=1, batch_size=64, crop_padding=0, flip=False,
                  device="cpu", tensorboard=False, seed=3, precision="fp32")
trainer = Trainer(cfg, Path(sys.argv[1]) / "run")
trainer.fit()
torch.save(trainer.model.state_dict(), Path(sys.argv[1]) / f"rank{os.environ.get('RANK', 'single')}.pt")
"""


def torchrun(script: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    """``script out [args]`` in two CPU processes under torchrun (gloo), one thread each."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc-per-node",
            "2",
            str(script),
            str(out),
            *args,
        ],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_two_gloo_ranks_match_each_other_and_one_process(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "one")],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert single.returncode == 0, single.stderr
    ddp = torchrun(script, tmp_path / "two")
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    rank0 = torch.load(tmp_path / "two" / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "two" / "rank1.pt", weights_only=True)
    one = torch.load(tmp_path / "one" / "ranksingle.pt", weights_only=True)
    for key in one:
        assert torch.equal(rank0[key], rank1[key]), key
        torch.testing.assert_close(rank0[key], one[key], rtol=1e-4, atol=1e-5)
    # only rank 0 wrote the run directory's files
    assert (tmp_path / "two" / "run" / "metrics.jsonl").read_text().count("\n") == 1


INTERRUPTED_WORKER = """
import os, signal, sys
from pathlib import Path
from zoo_core.errors import ZooError
from zoo_core.train.trainer import Trainer
from zoo_core.train.config import TrainConfig

class SignalOnRankOne:
    def on_step_end(self, trainer):
        if trainer.step == 7 and os.environ["RANK"] == "1":
            os.kill(os.getpid(), getattr(signal, sys.argv[2]))

cfg = TrainConfig(dataset="digits", model="lenet", epochs=2, batch_size=64, device="cpu", tensorboard=False,
                  log_every=50)
try:
    Trainer(cfg, Path(sys.argv[1]), callbacks=[SignalOnRankOne()], save_every="off").fit()
except ZooError as exc:
    print(f"rank {os.environ['RANK']}: {exc}", file=sys.stderr)
    sys.exit(exc.exit_code)
"""


@pytest.mark.slow
@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_signal_on_one_rank_stops_all_ranks_at_the_next_step(tmp_path, name):
    """The ranks agree one step after the signal (a lagged all-reduce of the flag), far before the next
    logging point (50), and only rank 0 says so."""
    script = tmp_path / "worker.py"
    script.write_text(INTERRUPTED_WORKER)
    result = torchrun(script, tmp_path / "run", name)
    assert result.returncode != 0
    assert f"rank 0: Stopped by {name} in epoch 1, step 8 (8/" in result.stderr
    assert "rank 1: \n" in result.stderr  # rank 1's error is empty: the CLI prints nothing for it
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["step"] == 8 and state["batch_in_epoch"] == 8


FEATURES_WORKER = """
import json, os, sys
from pathlib import Path
import torch
from zoo_core.train.trainer import Trainer
from zoo_core.train.config import TrainConfig

cfg = TrainConfig(**json.loads(sys.argv[2]), device="cpu", tensorboard=False, seed=5, precision="fp32")
trainer = Trainer(cfg, Path(sys.argv[1]) / "run")
trainer.fit()
state = {"model": trainer.model.state_dict(), "ema": trainer.average.state_dict()}
torch.save(state, Path(sys.argv[1]) / f"rank{os.environ.get('RANK', 'single')}.pt")
"""
FEATURES = {
    "dataset": "digits",
    "epochs": 2,
    "batch_size": 64,
    "padding_mode": "reflect",
    "flip": True,
    "alternate_flip": True,
    "ema": 0.9,
    "ema_every": 3,
    "ema_warmup": 2.0,
    "ema_mode": "lookahead",
    "tta": "flip-translate",
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "crop", "group", "same_as_one_process"),
    [
        # no crop: its offsets are drawn per rank, so one process would crop differently
        ("lenet", 0, {"params": "classifier.*", "lr_scale": 2.0, "epochs": 1}, True),
        # fastnet's BatchNorm sees each rank's half batch: its weights equal across ranks, not one process's
        ("fastnet", 1, {"params": "whiten.bias", "epochs": 1}, False),
    ],
)
def test_trainer_features_under_ddp(tmp_path, model, crop, group, same_as_one_process):
    """Averaging, the alternating flip, parameter groups, reflect-padded crops and (fastnet) the
    data-dependent init give identical weights on every rank, and with a model without BatchNorm the
    same weights as one process."""
    script = tmp_path / "worker.py"
    script.write_text(FEATURES_WORKER)
    settings = json.dumps({**FEATURES, "model": model, "crop_padding": crop, "param_groups": [group]})
    ddp = torchrun(script, tmp_path / "two", settings)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    rank0 = torch.load(tmp_path / "two" / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "two" / "rank1.pt", weights_only=True)
    for part in ("model", "ema"):
        for key in rank0[part]:
            if "running_" not in key:  # DDP hands rank 0's BatchNorm statistics over before each forward
                assert torch.equal(rank0[part][key], rank1[part][key]), (part, key)
    if same_as_one_process:
        single = subprocess.run(
            [sys.executable, str(script), str(tmp_path / "one"), settings],
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert single.returncode == 0, single.stderr
        one = torch.load(tmp_path / "one" / "ranksingle.pt", weights_only=True)
        for part in ("model", "ema"):
            for key in one[part]:  # 2 epochs of float summation in another order: ~1e-5 apart, a wrong
                # flip or group rule would put them ~1e-2 apart
                torch.testing.assert_close(rank0[part][key], one[part][key], rtol=1e-3, atol=2e-4)
