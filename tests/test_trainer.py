"""The Trainer through `zoo train`, on the embedded digits data set: run directory contents, exact resume
after Ctrl-C and after kill -9, divergence, and the one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

import zoo_core
from zoo_core.cli import cli

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--batch-size", "64", "--no-tensorboard", "--log-every", "5"]


def zoo(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "zoo_core", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model.safetensors"))


def test_train_writes_a_complete_run_directory(tmp_path, catalog):
    from click.testing import CliRunner

    run = tmp_path / "run"
    result = CliRunner().invoke(
        cli, ["train", "digits", "lenet", "--epochs", "2", "--out", str(run), "--batch-size", "64"]
    )
    assert result.exit_code == 0, result.output
    assert "Done: lenet on digits, 2 epochs" in result.output
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2]
    for m in lines:
        assert {"epoch", "train_loss", "val_loss", "val_acc", "val_acc5", "lr", "img_per_s", "time_s"} <= set(
            m
        )
        assert 0 <= m["val_acc"] <= m["val_acc5"] <= 1 and m["img_per_s"] > 0
    assert lines[1]["time_s"] > lines[0]["time_s"]
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"] == "digits" and config["model"] == "lenet" and config["epochs"] == 2
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["best_acc"] == max(m["val_acc"] for m in lines)
    assert state["epoch"] == 2 and set(state) >= {
        "model",
        "optimizer",
        "scheduler",
        "scaler",
        "rng_cpu",
        "config",
    }
    with safe_open(str(run / "best.safetensors"), "pt") as f:
        meta = f.metadata()
    assert meta["model"] == "lenet" and meta["dataset"] == "digits"
    assert json.loads(meta["classes"]) == [str(i) for i in range(10)]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run))
    events.Reload()
    assert set(events.Tags()["scalars"]) == {
        "train/train_loss",
        "train/lr",
        "train/img_per_s",
        "val/val_loss",
        "val/val_acc",
        "val/val_acc5",
    }
    assert [e.step for e in events.Scalars("val/val_acc")] == [1, 2]
    assert events.Tags()["images"] == ["train/augmented_batch"]
    from zoo_core.train.checkpoint import load_model

    model, card = load_model(run / "best.safetensors")
    assert not model.training
    assert card.classes == [str(i) for i in range(10)] and card.input_size == (1, 32, 32)


# Trains through the Python API with a callback that signals this very process at an exact step.
INTERRUPTED_RUN = """
import os, signal, sys
from pathlib import Path
from zoo_core.errors import ZooError
from zoo_core.train.trainer import Trainer
from zoo_core.train.config import TrainConfig

class SignalAt:
    def on_step_end(self, trainer):
        if trainer.step == int(sys.argv[3]):
            os.kill(os.getpid(), getattr(signal, sys.argv[2]))

cfg = TrainConfig(dataset="digits", model="lenet", epochs=3, batch_size=64, tensorboard=False, log_every=5)
try:
    Trainer(cfg, Path(sys.argv[1]), callbacks=[SignalAt()]).fit()
except ZooError as exc:
    print(exc, file=sys.stderr)
    sys.exit(exc.exit_code)
"""


def straight_run(tmp_path: Path) -> Path:
    run = tmp_path / "straight"
    code, _, err = finish(zoo("train", "digits", "lenet", "--epochs", "3", "--out", str(run), *FAST))
    assert code == 0, err
    return run


def interrupted_run(run: Path, signal_name: str, step: int) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_RUN, str(run), signal_name, str(step)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    return proc.returncode, proc.stderr


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def test_resume_after_ctrl_c_mid_epoch_matches_an_uninterrupted_run(tmp_path):
    straight, cut = straight_run(tmp_path), tmp_path / "cut"
    code, err = interrupted_run(cut, "SIGINT", 30)  # 22 batches an epoch (1,437 images): in the second
    assert code == 130, err
    assert f"Resume with: zoo train --resume {cut}" in err
    state = torch.load(cut / "last.pt", weights_only=True)
    assert state["epoch"] == 1 and state["batch_in_epoch"] == 8
    code, _, err = finish(zoo("train", "--resume", str(cut)))
    assert code == 0, err
    assert_same_weights(straight, cut)
    assert [json.loads(x)["epoch"] for x in (cut / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]


@pytest.mark.slow
def test_resume_after_kill_9_matches_an_uninterrupted_run(tmp_path):
    straight, killed = straight_run(tmp_path), tmp_path / "killed"
    code, _ = interrupted_run(killed, "SIGKILL", 40)
    assert code == -signal.SIGKILL
    assert len((killed / "metrics.jsonl").read_text().splitlines()) == 1
    code, _, err = finish(zoo("train", "--resume", str(killed)))
    assert code == 0, err
    assert_same_weights(straight, killed)


def test_cuda_without_cuda_is_one_line(run_zoo):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = run_zoo("train", "digits", "lenet", "--device", "cuda")
    assert result.returncode == 2
    assert result.stderr == "Error: --device cuda was asked for, but CUDA is not available on this machine\n"


def test_unknown_model_suggests(run_zoo):
    result = run_zoo("train", "digits", "lenett")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Did you mean 'lenet'?" in result.stderr


def test_existing_run_directory_is_not_overwritten(tmp_path, run_zoo):
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"precious")
    result = run_zoo("train", "digits", "lenet", "--out", str(run))
    assert result.returncode == 2 and "--resume" in result.stderr
    assert (run / "last.pt").read_bytes() == b"precious"


class NanAfter(torch.nn.Module):
    """A linear classifier whose training outputs turn NaN after ``after`` forward passes."""

    def __init__(self, num_classes: int, in_chans: int, after: int) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(in_chans * 32 * 32, num_classes))
        self.after, self.calls = after, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if self.training:
            self.calls += 1
            if self.calls > self.after:
                out = out * float("nan")
        return out


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path, catalog):
    from click.testing import CliRunner

    catalog.models.register(
        "nan-after", lambda *, num_classes, in_chans=1, **kw: NanAfter(num_classes, in_chans, 30)
    )
    run = tmp_path / "run"
    result = CliRunner().invoke(
        cli, ["train", "digits", "nan-after", "--epochs", "3", "--out", str(run), *FAST]
    )
    assert result.exit_code == 1
    *progress, line = result.output.splitlines()
    # the precision line, progress lines off a terminal (epoch 1's summary among them), then the error alone
    assert progress[0].startswith("precision ")
    assert progress[1:] and all(p.split()[0] == "epoch" for p in progress[1:])
    assert line.startswith("Error: The training loss became nan in epoch 2")
    assert f"the last checkpoint in {run} (epoch 1, step 22) is unchanged" in line
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1


@pytest.mark.parametrize(
    ("save_every", "kept"),
    [("off", "nothing was saved (no checkpoint before it)"), ("2", "(epoch 1 batch 2, step 2) is unchanged")],
)
def test_nan_in_the_first_epoch_says_truthfully_what_was_saved(tmp_path, catalog, save_every, kept):
    from click.testing import CliRunner

    catalog.models.register(  # NaN from step 4; logging points every 5 steps, --save-every 2 due at 2 and 4
        "nan-early", lambda *, num_classes, in_chans=1, **kw: NanAfter(num_classes, in_chans, 3)
    )
    run = tmp_path / "run"
    args = ["train", "digits", "nan-early", "--epochs", "2", "--out", str(run), *FAST]
    args += ["--save-every", save_every]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    line = result.output.splitlines()[-1]
    assert line.startswith("Error: The training loss became nan in epoch 1 (step 5)")
    assert kept in line
    if save_every == "off":
        assert not (run / "last.pt").exists()
    else:  # the snapshot of step 4 held NaN weights: never written
        state = torch.load(run / "last.pt", weights_only=True)
        assert state["step"] == 2 and all(torch.isfinite(v).all() for v in state["model"].values())


def test_bf16_autocast_and_channels_last_train_on_the_cpu(tmp_path, catalog, monkeypatch):
    from click.testing import CliRunner

    import zoo_core.train.trainer as trainer_module

    tuned = []  # the CPU allocator setting (zoo_core.allocator) is asked for once per CPU run
    monkeypatch.setattr(trainer_module, "keep_freed_memory", lambda: tuned.append(True) or True)

    run = tmp_path / "run"
    args = [
        "train",
        "digits",
        "lenet",
        "--epochs",
        "3",
        "--precision",
        "bf16",
        "--channels-last",
        "--out",
        str(run),
    ]
    result = CliRunner().invoke(cli, [*args, *FAST])
    assert result.exit_code == 0, result.output
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["val_acc"] > 0.5  # chance is 0.1
    config = json.loads((run / "config.json").read_text())
    assert config["precision"] == "bf16" and config["channels_last"] is True
    assert tuned == [True]


@pytest.mark.slow
def test_compiled_training_saves_plain_weights(tmp_path, catalog):
    from click.testing import CliRunner

    run = tmp_path / "run"
    result = CliRunner().invoke(
        cli, ["train", "digits", "lenet", "--epochs", "1", "--compile", "--out", str(run), *FAST]
    )
    assert result.exit_code == 0, result.output
    keys = weights(run).keys()
    assert keys == zoo_core.create_model("lenet", num_classes=10, in_chans=1).state_dict().keys()


class StreamedDigits(torch.utils.data.Dataset):
    """The digits as a map-style Dataset of (uint8 C×H×W, int): the path for data too large for memory."""

    def __init__(self, split: str) -> None:
        self.base = zoo_core.create_dataset("digits", split=split)
        self.classes = self.base.classes

    def __len__(self) -> int:
        return len(self.base.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.base.images[i], int(self.base.labels[i])


def test_a_streamed_dataset_trains_through_dataloader_workers(tmp_path, catalog):
    from click.testing import CliRunner

    catalog.datasets.register(
        "streamed-digits", lambda *, root=None, split="train", **kw: StreamedDigits(split), num_classes=10
    )
    run = tmp_path / "run"
    args = ["train", "streamed-digits", "lenet", "--epochs", "4", "--lr", "5e-3", "--optimizer", "adamw"]
    result = CliRunner().invoke(cli, [*args, "--out", str(run), *FAST])
    assert result.exit_code == 0, result.output
    assert json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])["val_acc"] > 0.5
    with safe_open(str(run / "best.safetensors"), "pt") as f:
        assert json.loads(f.metadata()["input_size"]) == [1, 32, 32]


def test_resume_warns_about_options_it_ignores(tmp_path, run_zoo):
    run = tmp_path / "run"
    assert run_zoo("train", "digits", "lenet", "--epochs", "1", "--out", str(run), *FAST).returncode == 0
    result = run_zoo("train", "--resume", str(run), "--epochs", "5", "--aug", "mixup")
    assert result.returncode == 0
    assert (
        f"zoo: warning: --resume continues {run} with its saved settings; ignored: --aug --epochs"
        in result.stderr
    )
    assert "has already finished (epochs: 1); nothing to do." in result.stderr


def test_headline_flow_train_cifar10_inception_cutmix_then_eval_and_predict(tmp_path, catalog):
    """`zoo train cifar10 inception --aug cutmix` on tiny official-format batches, then `zoo eval` and
    `zoo predict` on the run it wrote."""
    from click.testing import CliRunner
    from PIL import Image
    from test_datasets_cifar10 import write_cifar

    write_cifar(tmp_path / "data" / "cifar-10-batches-py")
    run = tmp_path / "run"
    runner = CliRunner()
    train = ["train", "cifar10", "inception", "--aug", "cutmix:alpha=1.0,p=0.5", "--epochs", "2"]
    result = runner.invoke(
        cli, [*train, "--batch-size", "8", "--data-dir", str(tmp_path / "data"), "--out", str(run)]
    )
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert (
        config["augs"] == ["cutmix:alpha=1.0,p=0.5"]
        and config["crop_padding"] == 4
        and config["flip"] is True
    )
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2

    evaluation = runner.invoke(cli, ["eval", str(run), "--data-dir", str(tmp_path / "data"), "--json"])
    assert evaluation.exit_code == 0, evaluation.output
    assert json.loads(evaluation.output)["count"] == 6  # write_cifar's test batch

    Image.new("RGB", (50, 40), (200, 30, 30)).save(tmp_path / "red.png")
    prediction = runner.invoke(
        cli, ["predict", str(run), str(tmp_path / "red.png"), "--top-k", "3", "--json"]
    )
    assert prediction.exit_code == 0, prediction.output
    [row] = json.loads(prediction.output)
    assert row["file"].endswith("red.png") and len(row["top"]) == 3
    assert {t["class"] for t in row["top"]} <= set(
        zoo_core.create_dataset("cifar10", root=tmp_path / "data").classes
    )
    assert row["top"][0]["prob"] >= row["top"][1]["prob"] >= row["top"][2]["prob"]
