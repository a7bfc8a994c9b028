"""Progress when the output is not a terminal: a line at each logging point and at least every 30 s."""

from __future__ import annotations

import io
import re

from tqdm import tqdm

from zoo_core.train.config import TrainConfig
from zoo_core.train.log import ProgressLines, TrainingLog


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def lines(total: int = 100, initial: int = 0, epoch: int = 1) -> tuple[ProgressLines, Clock, io.StringIO]:
    clock, out = Clock(), io.StringIO()
    bar = ProgressLines(
        total=total, initial=initial, epoch=epoch, epochs=4, batch_size=32, file=out, clock=clock
    )
    return bar, clock, out


def test_nothing_is_written_between_logging_points_before_30_seconds():
    bar, clock, out = lines()
    for _ in range(10):
        clock.now += 2.9
        bar.update(1)
    assert out.getvalue() == ""


def test_a_line_every_30_seconds_without_a_logging_point():
    bar, clock, out = lines()
    for _ in range(20):  # 5 s a step: lines at 30 s and 60 s
        clock.now += 5
        bar.update(1)
    written = out.getvalue().splitlines()
    assert len(written) == 3
    # 6 steps in 30 s of batch 32: 6.4 img/s; 94 steps left at 0.2 steps/s; then 2 more epochs of 100
    assert written[0] == "epoch 2/4  step 6/100  loss -  6.4 img/s  ETA 7:50 (run 24:30)"


def test_each_logging_point_writes_a_line_with_the_loss():
    bar, clock, out = lines(initial=40)
    clock.now += 1
    bar.update(10)
    bar.set_postfix(loss="0.1234", lr="0.01")
    (line,) = out.getvalue().splitlines()
    assert re.fullmatch(
        r"epoch 2/4  step 50/100  loss 0\.1234  lr 0\.01  320 img/s  ETA 0:05 \(run 0:25\)", line
    )
    clock.now += 31
    bar.update(1)
    assert "loss 0.1234" in out.getvalue().splitlines()[-1]  # the last known loss: no wait for the device


def test_a_terminal_gets_the_tqdm_bar_and_a_log_file_gets_lines(tmp_path):
    cfg = TrainConfig(dataset="digits", model="lenet", epochs=3, batch_size=64, tensorboard=False)
    terminal, lines, silent = (
        TrainingLog(tmp_path, cfg, enabled=on, interactive=tty).progress(total=5, initial=0, epoch=0)
        for on, tty in ((True, True), (True, False), (False, False))
    )
    assert isinstance(terminal, tqdm) and not terminal.disable
    assert isinstance(lines, ProgressLines)
    assert isinstance(silent, tqdm) and silent.disable  # the other ranks of a distributed run
    for bar in (terminal, lines, silent):  # closed, or the heartbeat writes this bar's line all session
        bar.close()
