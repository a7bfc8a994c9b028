"""Preemption: a stop signal saves at the next step and the same command continues the run to the weights of
an uninterrupted one; one writer per run directory; --resume auto; mid-epoch snapshots (--save-every)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from zoo_core.cli.resume import differences
from zoo_core.errors import BadInputError
from zoo_core.train import checkpoint
from zoo_core.train.config import TrainConfig
from zoo_core.train.periodic_save import PeriodicSaver, parse_interval
from zoo_core.train.run_lock import RunInUse, RunLock
from zoo_core.train.stop import StopSignals, parse_signals

ROOT = Path(__file__).resolve().parents[1]
ARGS = [
    "train",
    "digits",
    "lenet",
    "--epochs",
    "2",
    "--batch-size",
    "64",
    "--no-tensorboard",
    "--log-every",
    "5",
]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "ZOO_DEBUG": ""}

# `zoo ARGS` with a signal sent to itself at a moment: at a step (`step N`), at the start of the evaluation
# (`eval N`: the Nth), while the data set is built (`data`), or a second one inside the stop's save (`save`)
DRIVER = r"""
import json, os, signal, sys
import zoo_core.train.checkpoint as ckpt
from zoo_core import contracts
from zoo_core.cli import cli
from zoo_core.train.trainer import Trainer

args, plan = json.loads(sys.argv[1]), json.loads(sys.argv[2])
send = lambda: os.kill(os.getpid(), getattr(signal, plan["signal"]))
first_try = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) == 0
once = first_try and os.environ.get("RANK", "0") == plan.get("rank", "0")
if plan["at"] == "step" and once:
    original_call = Trainer._call
    def _call(self, event, *a):
        if event == "on_step_end" and self.step == plan["step"]:
            send()
        return original_call(self, event, *a)
    Trainer._call = _call
elif plan["at"] == "eval" and once:
    original_evaluate, count = Trainer.evaluate, [0]
    def evaluate(self, *a):
        count[0] += 1
        if count[0] == plan["n"]:
            send()
        return original_evaluate(self, *a)
    Trainer.evaluate = evaluate
elif plan["at"] == "data" and once:
    original_kind, count = contracts.dataset_kind, [0]
    def dataset_kind(*a):
        count[0] += 1
        if count[0] == 1:
            send()
        return original_kind(*a)
    contracts.dataset_kind = dataset_kind
elif plan["at"] == "save" and once:
    original_call, original_save = Trainer._call, ckpt.save_state
    def _call(self, event, *a):
        if event == "on_step_end" and self.step == plan["step"]:
            send()
        return original_call(self, event, *a)
    def save_state(path, state, **kw):
        if state["step"] == plan["step"]:
            send()  # a second signal while the stop's save is under way
        return original_save(path, state, **kw)
    Trainer._call, ckpt.save_state = _call, save_state
sys.exit(cli.main(args, standalone_mode=False))
"""


def zoo_with_signal(args: list[str], plan: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps([str(a) for a in args]), json.dumps(plan)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=ENV,
        timeout=300,
    )


def zoo(*args: object, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "zoo_core", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=ENV,
        timeout=300,
    )


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def state(run: Path, name: str = "last.pt") -> dict:
    return torch.load(run / name, weights_only=True)


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("straight") / "run"
    result = zoo(*ARGS, "--out", run, "--save-every", "off")
    assert result.returncode == 0, result.stderr
    return run


# -- signals ---------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("name", "code"), [("SIGTERM", 143), ("SIGUSR1", 138)])
def test_a_stop_signal_saves_that_step_and_the_same_command_continues_bit_identical(
    tmp_path: Path, straight: Path, name: str, code: int
) -> None:
    run = tmp_path / "run"
    stopped = zoo_with_signal([*ARGS, "--out", run], {"at": "step", "step": 30, "signal": name})
    assert stopped.returncode == code, stopped.stderr
    errors = [line for line in stopped.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        f"Error: Stopped by {name} in epoch 2, step 30 (8/22); state saved. Resume with: zoo train --resume "
        f"{run} (or the same command with --resume auto)"
    ]
    saved = state(run)
    assert (saved["epoch"], saved["step"], saved["batch_in_epoch"]) == (1, 30, 8)  # not one step lost
    again = zoo(*ARGS, "--out", run)
    assert again.returncode == 0, again.stderr
    assert f"zoo: the same command again: continuing {run} from epoch 2 batch 8, step 30" in again.stderr
    assert same_weights(run, straight)
    assert [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_stop_signals_can_be_changed(tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = [*ARGS, "--out", run, "--stop-signals", "INT"]
    result = zoo_with_signal(args, {"at": "step", "step": 5, "signal": "SIGUSR1"})
    assert result.returncode == -signal.SIGUSR1  # its default action: the process ends, nothing saved
    assert not (run / "last.pt").exists()


@pytest.mark.slow
def test_a_signal_in_the_evaluation_saves_the_finished_steps_and_resumes_bit_identical(
    tmp_path: Path, straight: Path
) -> None:
    run = tmp_path / "run"
    stopped = zoo_with_signal([*ARGS, "--out", run], {"at": "eval", "n": 2, "signal": "SIGTERM"})
    assert stopped.returncode == 143, stopped.stderr
    assert "Stopped by SIGTERM in epoch 2, step 44 (22/22)" in stopped.stderr
    saved = state(run)
    assert (saved["epoch"], saved["batch_in_epoch"]) == (1, 22)  # epoch 2 trained, not yet evaluated
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    again = zoo(*ARGS, "--out", run, "--resume", "auto")
    assert again.returncode == 0, again.stderr
    assert same_weights(run, straight)
    assert [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_a_signal_while_the_data_load_stops_before_the_first_step(tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = zoo_with_signal([*ARGS, "--out", run], {"at": "data", "signal": "SIGTERM"})
    assert result.returncode == 143, result.stderr
    assert "Stopped by SIGTERM before the first step; nothing new to save. Run the same command again" in (
        result.stderr
    )
    assert not (run / "last.pt").exists()


@pytest.mark.slow
def test_a_second_signal_during_the_save_lets_it_finish(tmp_path: Path, straight: Path) -> None:
    run = tmp_path / "run"
    stopped = zoo_with_signal([*ARGS, "--out", run], {"at": "save", "step": 12, "signal": "SIGTERM"})
    assert stopped.returncode == 143, stopped.stderr
    assert state(run)["step"] == 12 and not list(run.glob(".*.tmp"))
    assert zoo(*ARGS, "--out", run).returncode == 0
    assert same_weights(run, straight)


def test_signal_handlers_set_a_flag_and_a_repeat_outside_a_save_gives_up(monkeypatch) -> None:
    monkeypatch.delenv("TORCHELASTIC_RUN_ID", raising=False)
    stop = StopSignals(["SIGTERM"])
    stop._handle(signal.SIGTERM, None)
    assert stop.requested and stop.name == "SIGTERM"
    with stop.saving_now():
        stop._handle(signal.SIGTERM, None)  # ignored: the save completes
    with pytest.raises(KeyboardInterrupt):
        stop._handle(signal.SIGTERM, None)
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "x")  # torchrun's agent escalates by itself
    StopSignals(["SIGTERM"])._handle(signal.SIGTERM, None)


def test_parse_signals() -> None:
    assert parse_signals("TERM,usr1, SIGINT") == ("SIGTERM", "SIGUSR1", "SIGINT")
    assert parse_signals("none") == ()
    for bad in ("KILL", "NOPE", ","):
        with pytest.raises(BadInputError):
            parse_signals(bad)


# -- one writer per run directory ------------------------------------------------------------------------


def test_a_second_training_on_a_locked_run_directory_exits_2_naming_the_holder(tmp_path: Path) -> None:
    run = tmp_path / "run"
    holder = RunLock()
    holder.acquire(run)
    try:
        result = zoo(*ARGS, "--out", run)
        assert result.returncode == 2
        assert result.stderr.count("\n") == 1
        assert f"is in use by pid {os.getpid()} on {os.uname().nodename}" in result.stderr
    finally:
        holder.release()
    with pytest.raises(RunInUse):  # two holders in one process exclude each other too
        first, second = RunLock(), RunLock()
        first.acquire(run)
        second.acquire(run)
    first.release()


def test_kill_9_never_leaves_a_stale_lock(tmp_path: Path) -> None:
    code = (
        "import sys, time; from zoo_core.train.run_lock import RunLock; "
        f"lock = RunLock(); lock.acquire({str(tmp_path)!r}); print('held', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=ENV)
    assert proc.stdout.readline().strip() == "held"
    with pytest.raises(RunInUse, match=f"pid {proc.pid}"):
        RunLock().acquire(tmp_path)
    proc.kill()
    proc.wait()
    lock = RunLock()
    lock.acquire(tmp_path)  # the kernel let it go with the process
    lock.release()


# -- --resume auto and the same command again --------------------------------------------------------------


@pytest.mark.slow
def test_resume_auto_starts_continues_the_unfinished_run_then_says_it_is_done(tmp_path: Path) -> None:
    auto = [*ARGS, "--resume", "auto"]
    first = zoo(*auto, cwd=tmp_path)  # no run yet: starts one
    assert first.returncode == 0, first.stderr
    assert "zoo: --resume auto: no run to continue; starting runs/" in first.stderr
    (finished,) = (tmp_path / "runs").iterdir()
    older = tmp_path / "runs" / "20000101-000000-digits-lenet"  # an older run, stopped in epoch 2
    stopped = zoo_with_signal([*ARGS, "--out", older], {"at": "step", "step": 30, "signal": "SIGTERM"})
    assert stopped.returncode == 143
    again = zoo(*auto, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (
        "zoo: --resume auto: continuing runs/20000101-000000-digits-lenet from epoch 2 batch 8"
        in again.stderr
    )
    assert state(older)["epoch"] == 2
    done = zoo(*auto, cwd=tmp_path)
    assert done.returncode == 0
    assert f"zoo: runs/{finished.name} has finished (2/2 epochs); nothing to do" in done.stderr
    assert "epoch" not in done.stderr.replace("epochs", "")  # no training


def test_the_same_command_on_a_run_with_other_settings_exits_2_naming_them(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run).mkdir()
    saved = TrainConfig(dataset="digits", model="lenet", epochs=2, batch_size=64, lr=0.1, log_every=5)
    dataclasses.replace(saved, tensorboard=False).with_recipe(None).save(run / "config.json")
    (run / "last.pt").write_bytes(b"x")
    result = zoo(*ARGS, "--out", run, "--lr", "0.2")
    assert result.returncode == 2
    assert "already holds a run with other settings (--lr 0.2 here, 0.1 there)" in result.stderr
    assert (run / "last.pt").read_bytes() == b"x"


def test_differences_compare_only_what_the_command_sets() -> None:
    saved = TrainConfig(dataset="digits", model="lenet", epochs=2, lr=0.1, device="cpu", data_dir="/d")
    asked = TrainConfig(dataset="digits", model="lenet", epochs=2, device="cuda")
    assert differences(asked, saved) == []
    assert differences(TrainConfig(dataset="digits", model="lenet", seed=3), saved) == [
        "--seed 3 here, 0 there"
    ]


# -- mid-epoch snapshots ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_save_every_keeps_two_states_and_a_kill_9_loses_at_most_the_interval(
    tmp_path: Path, straight: Path
) -> None:
    run = tmp_path / "run"
    killed = zoo_with_signal(
        [*ARGS, "--out", run, "--save-every", "5"], {"at": "step", "step": 33, "signal": "SIGKILL"}
    )
    assert killed.returncode == -signal.SIGKILL
    last, previous = state(run), state(run, "previous.pt")
    assert last["step"] in (25, 30) and last["batch_in_epoch"] == last["step"] - 22  # ≤ 5 steps lost (8 if
    assert previous["step"] in (22, 25) and previous["step"] < last["step"]  # the kill cut the write of 30)
    again = zoo(*ARGS, "--out", run, "--save-every", "5")
    assert again.returncode == 0, again.stderr
    assert same_weights(run, straight)


@pytest.mark.slow
def test_a_damaged_last_pt_resumes_from_previous_pt(tmp_path: Path, straight: Path) -> None:
    run = tmp_path / "run"
    stopped = zoo_with_signal(
        [*ARGS, "--out", run, "--save-every", "5"], {"at": "step", "step": 27, "signal": "SIGTERM"}
    )
    assert stopped.returncode == 143
    assert state(run, "previous.pt")["step"] == 25
    (run / "last.pt").write_bytes((run / "last.pt").read_bytes()[:1000])
    again = zoo("train", "--resume", run)
    assert again.returncode == 0, again.stderr
    assert "is damaged" in again.stderr and f"resuming from {run / 'previous.pt'} instead" in again.stderr
    assert same_weights(run, straight)


def test_parse_interval() -> None:
    assert parse_interval("500") == (500, 0.0)
    assert parse_interval("10m") == (0, 600.0)
    assert parse_interval("1.5h") == (0, 5400.0)
    assert parse_interval("off") == parse_interval("0") == (0, 0.0)
    for bad in ("10x", "-5", "m", "0m"):
        with pytest.raises(BadInputError):
            parse_interval(bad)


def test_the_saver_is_due_by_time_and_hands_a_failed_write_to_the_next_step() -> None:
    now = [0.0]
    saver = PeriodicSaver("30s", clock=lambda: now[0])
    assert not saver.due(1)
    now[0] = 31.0
    assert saver.due(2)
    saver.submit(lambda: time.sleep(0.01))
    assert not saver.due(3)  # the clock restarts at each snapshot
    saver.wait()

    def full() -> None:
        raise OSError(28, "No space left on device")

    saver.submit(full)
    saver.thread.join()
    with pytest.raises(OSError, match="No space"):
        saver.due(4)


FILE_LIMIT = r"""
import json, resource, signal, sys
import torch
from safetensors.torch import save_file
from zoo_core.train import checkpoint

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
tensors, reasons = {"w": torch.zeros(100_000)}, []
for write in (lambda p: checkpoint.save_state(p, tensors), lambda p: save_file(tensors, p)):
    try:
        write(sys.argv[1])
    except Exception as err:
        reasons.append([type(err).__name__, checkpoint.write_failure(err), str(err)])
print(json.dumps(reasons))
"""


def test_a_write_the_system_refuses_is_named_whoever_wrote_it(tmp_path: Path) -> None:
    """A real refused write (a file-size limit: EFBIG, as ENOSPC reaches torch and safetensors the same
    way): torch.save's RuntimeError and safetensors' text both give the system's reason."""
    result = subprocess.run(
        [sys.executable, "-c", FILE_LIMIT, str(tmp_path / "state")], capture_output=True, text=True, env=ENV
    )
    assert result.returncode == 0, result.stderr
    (ours, name_ours, text_ours), (theirs, name_theirs, _) = json.loads(result.stdout)
    assert ours == "CheckpointWriteError" and name_ours == os.strerror(27)  # EFBIG: "File too large"
    assert text_ours == f"Could not write {tmp_path / 'state'}: File too large"
    assert theirs == "SafetensorError" and name_theirs == "File too large"
    assert checkpoint.write_failure(ValueError("a bug, not the disk")) is None
    assert not list(tmp_path.glob(".*.tmp"))


# -- under torchrun --------------------------------------------------------------------------------------


def torchrun(*launch: str, script: Path, args: list, plan: dict, wait: bool = True):
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        *launch,
        str(script),
        json.dumps(list(map(str, args))),
    ]
    proc = subprocess.Popen(
        [*command, json.dumps(plan)],
        cwd=ROOT,
        env={**ENV, "GLOO_SOCKET_IFNAME": "lo"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if not wait:
        return proc
    out, err = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The driver as a file, and an uninterrupted run of two gloo ranks."""
    base = tmp_path_factory.mktemp("ddp")
    script = base / "driver.py"
    script.write_text(DRIVER)
    run = base / "straight"
    args = [*ARGS, "--out", run, "--save-every", "off"]
    done = torchrun("--standalone", "--nproc-per-node", "2", script=script, args=args, plan={"at": "none"})
    assert done.returncode == 0, done.stderr[-3000:]
    return script, run


@pytest.mark.slow
def test_a_worker_killed_under_max_restarts_is_restarted_and_continues_bit_identical(
    tmp_path: Path, two_ranks: tuple[Path, Path]
) -> None:
    script, straight = two_ranks
    run = tmp_path / "run"
    args = [*ARGS, "--out", run, "--save-every", "5"]
    plan = {"at": "step", "step": 30, "signal": "SIGKILL", "rank": "1"}  # on the first try only
    launch = ["--standalone", "--nproc-per-node", "2", "--max-restarts", "1"]
    done = torchrun(*launch, script=script, args=args, plan=plan)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"zoo: the same command again: continuing {run} from epoch 2 batch" in done.stderr
    assert same_weights(run, straight)
    assert [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]


@pytest.mark.slow
def test_two_nodes_stop_together_when_one_agent_gets_sigterm_and_the_same_commands_continue(
    tmp_path: Path, two_ranks: tuple[Path, Path]
) -> None:
    script, straight = two_ranks
    run = tmp_path / "run"
    args = [*ARGS, "--out", run, "--save-every", "3"]

    def nodes() -> list[subprocess.Popen]:
        port = free_port()
        return [
            torchrun(
                *("--nnodes", "2", "--node-rank", str(node), "--nproc-per-node", "1"),
                *("--master-addr", "127.0.0.1", "--master-port", str(port)),
                script=script,
                args=args,
                plan={"at": "none"},
                wait=False,
            )
            for node in (0, 1)
        ]

    agents = nodes()
    deadline = time.monotonic() + 300
    while not (run / "previous.pt").exists():  # two snapshots: the run is in its stride
        assert time.monotonic() < deadline and agents[0].poll() is None, agents[0].communicate()[1][-3000:]
        time.sleep(0.05)
    agents[1].send_signal(signal.SIGTERM)  # its agent forwards it to its worker, rank 1
    errs = [agent.communicate(timeout=300)[1] for agent in agents]
    assert all(agent.returncode != 0 for agent in agents)
    said = [line for err in errs for line in err.splitlines() if "Stopped by SIGTERM" in line]
    assert len(said) == 1, errs  # rank 0 alone
    saved = state(run)
    assert f"step {saved['step']} ({saved['batch_in_epoch']}/22); state saved" in said[0]
    agents = nodes()
    for agent in agents:
        _, err = agent.communicate(timeout=600)
        assert agent.returncode == 0, err[-3000:]
    assert same_weights(run, straight)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
