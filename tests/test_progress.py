"""Every long wait shows progress: phases, the heartbeat inside one long call, and the training step timer."""

from __future__ import annotations

import io
import itertools
import re
import time
from types import SimpleNamespace

import pytest

from zoo_core import progress
from zoo_core.progress import Phase, track
from zoo_core.train.log import ProgressLines


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TimedLines(io.StringIO):
    """A log file that remembers when (on ``clock``) each line arrived."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock, self.times = clock, []

    def write(self, text: str) -> int:
        self.times += [self.clock()] * text.count("\n")
        return super().write(text)


@pytest.fixture(autouse=True)
def no_reporters_left():
    progress._active.clear()
    progress._last_output[0] = 0.0
    yield
    leftover = list(progress._active)
    progress._active.clear()
    assert not leftover, f"reporters left running: {leftover}"


def phase(total: int | None = 10, **options) -> tuple[Phase, Clock, TimedLines]:
    clock = Clock()
    out = TimedLines(clock)
    return Phase("channel statistics", total, file=out, interactive=False, clock=clock, **options), clock, out


def test_a_phase_shorter_than_two_seconds_says_nothing():
    p, clock, out = phase()
    for _ in range(10):
        clock.now += 0.15
        p.update(1)
    p.close()
    assert out.getvalue() == ""


def test_a_phase_writes_after_two_seconds_then_every_30_and_says_when_it_is_done():
    p, clock, out = phase(total=100)
    for _ in range(100):  # 1 s an item: lines at 2 s, 32 s, 62 s, 92 s
        clock.now += 1
        p.update(1)
    p.close()
    lines = out.getvalue().splitlines()
    assert lines[0] == "zoo: channel statistics: 2/100 img  1.0 img/s  elapsed 0:02  ETA 1:38"
    assert [t - 1000 for t in out.times] == [2, 32, 62, 92, 100]
    assert lines[-1] == "zoo: channel statistics: 100/100 img in 1:40"


def test_a_phase_of_unknown_length_counts_what_it_has_done():
    p, clock, out = phase(total=None, unit="files")
    clock.now += 3
    p.update(250)
    p.close()
    assert out.getvalue().splitlines() == [
        "zoo: channel statistics: 250 files  83.3 files/s  elapsed 0:03",
        "zoo: channel statistics: 250 files in 0:03",
    ]


def test_a_phase_that_fails_writes_no_done_line():
    p, clock, out = phase()
    clock.now += 5
    p.update(1)
    with pytest.raises(RuntimeError), p:
        raise RuntimeError("decoder died")
    assert "in 0:05" not in out.getvalue()
    assert len(out.getvalue().splitlines()) == 1


def test_the_heartbeat_keeps_a_single_long_call_in_the_log():
    """init_from_data or a download: one call, no items finish; the beat writes at 2 s, then every 29 s
    (one look early, so that no gap passes 30 s however the looks fall)."""
    p, clock, out = phase(total=None, unit="step", heartbeat=True)
    p.note("whitening")
    for _ in range(100):  # the heartbeat thread looks once a second
        clock.now += 1
        progress.heartbeat()
    p.close()
    assert [t - 1000 for t in out.times] == [2, 31, 60, 89, 100]
    lines = out.getvalue().splitlines()
    assert lines[1] == "zoo: channel statistics: elapsed 0:31  (whitening)"
    assert lines[-1] == "zoo: channel statistics: done in 1:40"


def test_the_longest_gap_between_lines_of_made_slow_phases_is_the_interval():
    """Nested slow phases (a tree listed item by item, then a 50-second call): never 30 s without a line,
    and the first line at the first tick past 2 s."""
    clock = Clock()
    out = TimedLines(clock)
    options = dict(file=out, interactive=False, clock=clock, heartbeat=True)
    with Phase("setting up", unit="step", quiet=5, **options):
        with Phase("listing tree", unit="files", **options) as listing:
            for _ in range(40):
                clock.now += 1.5
                listing.update(1)
                progress.heartbeat()
        with Phase("data-init", unit="step", **options):
            for _ in range(50):
                clock.now += 1
                progress.heartbeat()
        for _ in range(45):  # back in set-up, nothing else running
            clock.now += 1
            progress.heartbeat()
    times = [1000.0, *out.times, clock.now]
    assert out.times[0] - 1000 == 3  # the listing's second item, 1.5 s apart
    assert max(b - a for a, b in itertools.pairwise(times)) <= 30


def test_the_heartbeat_serves_only_the_innermost_phase():
    outer, clock, out = phase(total=None, heartbeat=True)
    inner = Phase("evaluation", 3, unit="batch", file=out, interactive=False, clock=clock, heartbeat=True)
    clock.now += 3
    progress.heartbeat()
    assert out.getvalue().splitlines() == ["zoo: evaluation: 0/3 batch  elapsed 0:03"]
    inner.close()
    progress.heartbeat()  # the outer phase's turn: its first line is due
    assert out.getvalue().splitlines()[-1].startswith("zoo: channel statistics: elapsed 0:03")
    outer.close()


def test_only_rank_zero_reports(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    p, clock, out = phase()
    clock.now += 40
    p.update(5)
    p.close()
    assert out.getvalue() == "" and not progress._active


def test_track_counts_the_items_it_yields():
    clock = Clock()
    out = TimedLines(clock)

    def slow(n):
        for i in range(n):
            clock.now += 1
            yield i

    items = list(track(slow(4), "reading", total=4, file=out, interactive=False, clock=clock))
    assert items == [0, 1, 2, 3]
    assert out.getvalue().splitlines()[-1] == "zoo: reading: 4/4 img in 0:04"


def test_a_terminal_gets_a_tqdm_bar():
    out = io.StringIO()
    with Phase("decoding", 5, file=out, interactive=True) as p:
        assert p.bar is not None
        p.update(5)


def test_byte_counts_are_written_as_sizes():
    p, clock, out = phase(total=4_000_000, unit="B")
    clock.now += 2
    p.update(1_000_000)
    p.close()
    assert out.getvalue().splitlines()[0] == (
        "zoo: channel statistics: 1.0 MB/4.0 MB  500.0 KB/s  elapsed 0:02  ETA 0:06"
    )


def test_the_training_line_says_which_step_runs_and_for_how_long():
    clock = Clock()
    out = io.StringIO()
    bar = ProgressLines(total=97, initial=0, epoch=0, epochs=2, batch_size=512, file=out, clock=clock)
    clock.now += 45  # the first step: 45 s, and no line yet
    bar.update(1)
    first = "epoch 1/2  step 1/97  loss -  11 img/s  ETA 1:12:00 (run 2:24:45)"
    assert out.getvalue().splitlines() == [first]
    for _ in range(28):
        clock.now += 1
        bar.beat()
    assert len(out.getvalue().splitlines()) == 1  # 28 s into step 2: not yet
    clock.now += 1
    bar.beat()  # one look (1 s) before 30 s
    line = out.getvalue().splitlines()[-1]
    assert line.endswith("(step 2 running for 0:29)")
    clock.now += 24
    bar.update(1)  # step 2 ends 24 s after that line; step 3 has run 5 s when the next is due
    clock.now += 5
    bar.beat()
    assert out.getvalue().splitlines()[-1].endswith("ETA 1:21:32 (run 2:44:48)")  # no word for a short step
    bar.close()


def test_the_heartbeat_thread_writes_inside_a_real_long_call(monkeypatch):
    monkeypatch.setattr(progress, "INTERVAL", 0.2)
    monkeypatch.setattr(progress, "QUIET", 0.1)
    monkeypatch.setattr(progress, "BEAT", 0.02)
    monkeypatch.setattr(progress, "_heartbeat", None)  # a fresh thread that reads BEAT
    out = io.StringIO()
    with Phase("a long call", unit="step", file=out, interactive=False):
        deadline = time.monotonic() + 5
        while len(out.getvalue().splitlines()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # the main thread busy in one call, as in init_from_data
    lines = out.getvalue().splitlines()
    assert len(lines) >= 2 and all(re.match(r"zoo: a long call: elapsed 0:0\d", line) for line in lines[:2])


def test_zoo_bench_and_zoo_export_say_their_phases_in_a_log(catalog, tmp_path, monkeypatch, capsys):
    """Off a terminal (as under pytest), with the quiet time at 0: each names its phase and its count."""
    import torch

    from zoo_core.bench import throughput
    from zoo_core.data.export import export_image_folder

    monkeypatch.setattr(progress, "QUIET", 0.0)
    throughput.run_bench(["lenet"], device="cpu", batch_size=2, runs=1, warmup=1, modes=["infer"])
    lines = capsys.readouterr().err.splitlines()
    assert re.fullmatch(
        r"zoo: bench: [01]/1 run  .*elapsed \d+:\d\d.*\(lenet infer: warm-up and timed steps\)", lines[0]
    )
    assert re.fullmatch(r"zoo: bench: 1/1 run in \d+:\d\d", lines[-1])

    tiny = SimpleNamespace(
        images=torch.zeros(3, 1, 4, 4, dtype=torch.uint8), labels=torch.tensor([0, 1, 0]), classes=["a", "b"]
    )
    export_image_folder(tiny, tmp_path, "train")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(f"zoo: exporting train to {tmp_path}: ")
    assert re.fullmatch(
        rf"zoo: exporting train to {re.escape(str(tmp_path))}: 3/3 img in \d+:\d\d", lines[-1]
    )
