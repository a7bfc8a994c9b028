"""Divergence and a full disk. A model whose learning rate makes it diverge stops within one log interval of
the first non-finite loss, with one clear line, and the checkpoint of the last good epoch stays byte for byte;
a disk that fills while a checkpoint is saved (simulated: the write raises ENOSPC halfway) ends in one line
naming the file, leaves no temporary file, loses nothing saved before, and the run resumes to the same
weights as an uninterrupted one."""

from __future__ import annotations

import errno
import math
from pathlib import Path

import pytest
import torch
from reliability_helpers import invoke
from safetensors.torch import load_file

from zoo_core.train import checkpoint
from zoo_core.train.trainer import Trainer

AREA = "divergence and disk full"
LOG_EVERY = 5
FILES = ("best.safetensors", "model.safetensors", "last.pt")
# fp32 named, not `auto`: the module-scoped uninterrupted run is made before conftest's fake AVX2 CPU applies
# and a resume after monkeypatch.undo() sees the real one, so on an AMX machine `auto` would differ by run
BASE = ["--batch-size", "64", "--log-every", str(LOG_EVERY), "--no-tensorboard", "--precision", "fp32"]


@pytest.fixture
def losses(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, float]]:
    """(step, loss) of every optimizer step of the runs in this test (a host sync per step: tests only)."""
    seen: list[tuple[int, float]] = []
    original = Trainer.train_step

    def train_step(self, x, y):
        loss = original(self, x, y)
        seen.append((self.step + 1, float(loss)))
        return loss

    monkeypatch.setattr(Trainer, "train_step", train_step)
    return seen


def snapshot(run: Path) -> dict[str, bytes]:
    return {name: (run / name).read_bytes() for name in FILES if (run / name).exists()}


def stopped_in_time(message: str, losses: list[tuple[int, float]]) -> list[str]:
    bad = [step for step, value in losses if not math.isfinite(value)]
    if not bad:
        return ["the loss never became non-finite: no divergence to stop"]
    stopped = losses[-1][0]
    problems = []
    if f"(step {stopped})" not in message:
        problems.append(f"the message does not name the step the run stopped at ({stopped}): {message}")
    if stopped - bad[0] >= LOG_EVERY:
        problems.append(f"first non-finite loss at step {bad[0]}, stopped at step {stopped}")
    return problems


@pytest.mark.parametrize("lr", ["1e4", "1e8"])
def test_a_diverging_learning_rate_stops_within_one_log_interval(
    lr: str, tmp_path: Path, losses, ledger
) -> None:
    run = tmp_path / "run"
    args = ["train", "digits", "lenet", "--lr", lr, "--schedule", "constant", "--epochs", "2", "--out", run]
    outcome = invoke([*args, *BASE], timeout=600)
    problems = outcome.problems(codes=(1,), names=("The training loss became",))
    problems += stopped_in_time(outcome.err, losses)
    saved = [name for name in FILES if (run / name).exists()]
    if saved:  # it diverged in epoch 1: there is no good state to keep, and nothing bad may be saved
        problems.append(f"files saved from a diverged epoch: {saved}")
    first_bad = next((s for s, v in losses if not math.isfinite(v)), None)
    ledger.record(
        AREA,
        "divergence",
        f"lenet on digits, SGD lr {lr} constant: diverges in epoch 1",
        not problems,
        f"first non-finite loss at step {first_bad}, stopped at step {losses[-1][0] if losses else '-'}; "
        + outcome.summary(),
    )
    assert not problems, problems


class RaiseLrAfterFirstEpoch:
    """At the end of epoch 1 (after its checkpoint): remember the files, multiply the learning rate by 1e6."""

    def __init__(self) -> None:
        self.saved: dict[str, bytes] = {}

    def on_epoch_end(self, trainer: Trainer, metrics: dict) -> None:
        if metrics["epoch"] == 1:
            self.saved = snapshot(trainer.run_dir)
            trainer.schedule.base_lrs = [lr * 1e6 for lr in trainer.schedule.base_lrs]


def test_divergence_after_a_good_epoch_keeps_its_checkpoint_byte_for_byte(
    tmp_path: Path, losses, ledger
) -> None:
    from zoo_core.train.config import TrainConfig
    from zoo_core.train.trainer import TrainingDiverged

    run = tmp_path / "run"
    cfg = TrainConfig(
        dataset="digits",
        model="lenet",
        epochs=3,
        batch_size=64,
        schedule="constant",
        lr=0.05,
        tensorboard=False,
        log_every=LOG_EVERY,
    )
    watcher = RaiseLrAfterFirstEpoch()
    with pytest.raises(TrainingDiverged) as info:
        Trainer(cfg, run, callbacks=[watcher]).fit()
    message = str(info.value)
    problems = stopped_in_time(message, losses)
    if "\n" in message or "epoch 2" not in message or "(epoch 1, step 22) is unchanged" not in message:
        problems.append(f"unclear message: {message}")
    if set(watcher.saved) != set(FILES):
        problems.append(f"epoch 1 saved only {sorted(watcher.saved)}")
    if snapshot(run) != watcher.saved:
        problems.append("a checkpoint file changed after the good epoch")
    state = torch.load(run / "last.pt", weights_only=True)
    if state["epoch"] != 1 or not all(torch.isfinite(v).all() for v in state["model"].values()):
        problems.append("last.pt is not the finite state of epoch 1")
    first_bad = next((s for s, v in losses if not math.isfinite(v)), None)
    ledger.record(
        AREA,
        "divergence",
        "lenet on digits: lr × 1e6 after a good epoch 1",
        not problems,
        f"first non-finite loss at step {first_bad}, stopped at step {losses[-1][0]}; "
        "epoch 1's best/model/last.pt unchanged byte for byte",
    )
    assert not problems, problems


def fill_the_disk(monkeypatch: pytest.MonkeyPatch, target: str, at_save: int) -> None:
    """The ``at_save``-th write of ``target`` writes half its bytes, then raises ENOSPC (a full disk)."""
    original = checkpoint._write_atomically
    count = {"n": 0}

    def write_atomically(path: Path, write, keep=None) -> None:
        if Path(path).name == target:
            count["n"] += 1
            if count["n"] == at_save:

                def half_then_full(tmp: str) -> None:
                    write(tmp)
                    data = Path(tmp).read_bytes()
                    Path(tmp).write_bytes(data[: len(data) // 2])
                    raise OSError(errno.ENOSPC, "No space left on device", tmp)

                return original(path, half_then_full, keep)
        return original(path, write, keep)

    monkeypatch.setattr(checkpoint, "_write_atomically", write_atomically)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("straight") / "run"
    outcome = invoke(["train", "digits", "lenet", "--epochs", "3", "--out", run, *BASE], timeout=300)
    assert outcome.code == 0, outcome.err
    return run


@pytest.mark.parametrize(
    ("target", "at_save"),
    [("last.pt", 2), ("model.safetensors", 2), ("best.safetensors", 2), ("last.pt", 1)],
)
def test_a_full_disk_while_saving_loses_nothing_saved_before(
    target: str, at_save: int, tmp_path: Path, uninterrupted: Path, monkeypatch: pytest.MonkeyPatch, ledger
) -> None:
    run = tmp_path / "run"
    saves: list[dict[str, bytes]] = [{}]
    original_save = Trainer.save

    def save(self, val_acc=None):
        original_save(self, val_acc)
        saves.append(snapshot(self.run_dir))  # what a completed save left

    monkeypatch.setattr(Trainer, "save", save)
    fill_the_disk(monkeypatch, target, at_save)
    outcome = invoke(["train", "digits", "lenet", "--epochs", "3", "--out", run, *BASE], timeout=300)
    problems = outcome.problems(codes=(1,), names=(target,))
    if "No space left on device" not in outcome.err:
        problems.append("the error does not say the disk is full")
    before, after = saves[-1], snapshot(run)
    for name, data in before.items():
        if name == target or name not in after:
            if name not in after or after[name] != data:
                problems.append(f"{name} saved before was lost or changed")
        elif after[name] != data:  # written earlier in the failed save: must be a whole new file
            try:
                load_file(str(run / name))
            except Exception as exc:
                problems.append(f"{name} unreadable: {exc}")
    leftovers = [p.name for p in run.glob(".*.tmp")]
    if leftovers:
        problems.append(f"temporary files left: {leftovers}")
    monkeypatch.undo()  # the disk has room again
    resumed = invoke(["train", "--resume", run], timeout=300) if (run / "last.pt").exists() else None
    if at_save > 1:
        if resumed is None or resumed.code != 0:
            problems.append(f"resume failed: {resumed.summary() if resumed else 'no last.pt'}")
        else:
            a, b = (
                load_file(str(run / "model.safetensors")),
                load_file(str(uninterrupted / "model.safetensors")),
            )
            if a.keys() != b.keys() or not all(torch.equal(a[k], b[k]) for k in a):
                problems.append("the resumed run differs from an uninterrupted one")
    ledger.record(
        AREA,
        "disk full while saving",
        f"ENOSPC halfway through {target} at save {at_save}",
        not problems,
        outcome.summary() + ("; resumed to the uninterrupted run's weights" if at_save > 1 else ""),
    )
    assert not problems, problems
