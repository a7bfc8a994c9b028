"""The pre-flight word: a CPU run projected past two hours says so once, with what would fit."""

from __future__ import annotations

import io
import re
import time

from click.testing import CliRunner

import zoo_core.train.preflight as preflight_module
import zoo_core.train.trainer as trainer_module
from zoo_core import progress
from zoo_core.cli import cli
from zoo_core.train.preflight import Preflight, warning_line


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_steps(seconds_per_step: float, steps: int, **options) -> tuple[Preflight, io.StringIO]:
    clock, out = Clock(), io.StringIO()
    check = Preflight(clock=clock, file=out, **options)
    for step in range(1, steps + 1):
        clock.now += seconds_per_step * (20 if step == 1 else 1)  # the first step warms up: 20× slower
        check.step_done(step)
    return check, out


def test_resnet18_on_cifar10_at_45_s_a_step_is_told_what_fits():
    check, out = run_steps(
        45.0,
        4,
        total_steps=200 * 98,
        steps_per_epoch=98,
        batch_size=512,
        model="resnet18",
        input_size=(3, 32, 32),
    )
    (line,) = out.getvalue().splitlines()
    assert check.done and line == check.line
    # 45 s a step measured over steps 2-4 (the warm-up step not counted); 19,596 steps left
    assert line.startswith(
        "zoo: warning: at 11.4 img/s on this CPU the rest of this run would take about 244:57:00 "
    )
    assert "an epoch takes 1:13:30: --epochs 1 fits in 2:00:00" in line
    assert "`zoo bench --device cpu` shows which models train faster here" in line
    # the H200's measured 40,868 img/s for the 19,596 × 512 images left
    assert "on an NVIDIA H200 resnet18 trains at 40,868 img/s (benchmarks/results/gpu-h200/" in line
    assert "about 4:06 for the rest (an estimate from that rate)" in line


def test_the_epochs_that_fit_in_two_hours_are_named():
    line = warning_line(
        seconds_left=5 * 3600,
        seconds_per_step=1.0,
        steps_per_epoch=1800,
        batch_size=64,
        images_left=18000 * 64,
        model="timm/resnet10t",
        input_size=(3, 224, 224),
    )
    assert "an epoch takes 30:00: --epochs 4 fits in 2:00:00" in line
    assert "H200" not in line  # no benchmarked rate for that model and size
    slower = warning_line(
        seconds_left=10**6,
        seconds_per_step=1.0,
        steps_per_epoch=10_000,
        batch_size=64,
        images_left=10**6 * 64,
        model="resnet18",
        input_size=(3, 224, 224),
    )
    assert "one epoch alone takes 2:46:40" in slower and "--epochs" not in slower
    assert "H200" not in slower  # measured at 32×32 only


def test_a_run_that_fits_says_nothing_and_looks_only_once():
    options = dict(
        total_steps=1000, steps_per_epoch=100, batch_size=64, model="lenet", input_size=(1, 32, 32)
    )
    check, out = run_steps(0.5, 50, **options)  # 500 s in all
    assert check.done and check.line is None and out.getvalue() == ""


def test_nothing_is_said_before_three_steps_after_the_first():
    options = dict(
        total_steps=10**6, steps_per_epoch=100, batch_size=64, model="lenet", input_size=(1, 32, 32)
    )
    check, out = run_steps(60.0, 3, **options)
    assert not check.done and out.getvalue() == ""


def test_zoo_train_on_a_cpu_says_it_once(tmp_path, catalog, monkeypatch):
    monkeypatch.setattr(preflight_module, "LIMIT_S", 0.0)  # any run is "too long" for this test
    result = CliRunner().invoke(
        cli,
        ["train", "digits", "lenet", "--epochs", "2", "--out", str(tmp_path / "r"), "--no-tensorboard"],
    )
    assert result.exit_code == 0, result.output
    said = [line for line in result.output.splitlines() if line.startswith("zoo: warning: at ")]
    assert len(said) == 1
    assert "img/s on this CPU the rest of this run would take about" in said[0]
    assert "on an NVIDIA H200 lenet trains at 204,781 img/s" in said[0]


def test_a_slow_training_step_still_gets_a_line_every_interval(tmp_path, catalog, monkeypatch):
    """Off a terminal, a step longer than the interval gets lines from the heartbeat, naming the step."""
    monkeypatch.setattr(progress, "INTERVAL", 0.3)
    monkeypatch.setattr(progress, "BEAT", 0.02)
    monkeypatch.setattr(progress, "_heartbeat", None)
    real = trainer_module.Trainer.train_step

    def slow_first_step(self, x, y):
        if self.step == 0:
            time.sleep(1.5)
        return real(self, x, y)

    monkeypatch.setattr(trainer_module.Trainer, "train_step", slow_first_step)
    result = CliRunner().invoke(
        cli, ["train", "digits", "lenet", "--epochs", "1", "--out", str(tmp_path / "r"), "--no-tensorboard"]
    )
    assert result.exit_code == 0, result.output
    beats = [line for line in result.output.splitlines() if "(step 1 running for 0:0" in line]
    assert beats and beats[0].startswith("epoch 1/1  step 0/")


def test_a_slow_set_up_is_said_within_seconds_of_the_command(tmp_path, catalog, monkeypatch):
    """The first line comes within SETUP_QUIET (5 s) of the command however long the data take to read."""
    import zoo_core.cli.common as cli_common

    assert cli_common.SETUP_QUIET <= 5
    monkeypatch.setattr(cli_common, "SETUP_QUIET", 0.1)
    monkeypatch.setattr(progress, "BEAT", 0.02)
    monkeypatch.setattr(progress, "_heartbeat", None)
    real = trainer_module.refine_for_data

    def slow_data(*args, **kwargs):
        time.sleep(0.5)  # as a large tree's listing or a first decode would
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "refine_for_data", slow_data)
    result = CliRunner().invoke(
        cli, ["train", "digits", "lenet", "--epochs", "1", "--out", str(tmp_path / "r"), "--no-tensorboard"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("zoo: setting up the run: elapsed 0:00  (lenet on digits)")
    assert any(re.fullmatch(r"zoo: setting up the run: done in \d+:\d\d", line) for line in lines)
