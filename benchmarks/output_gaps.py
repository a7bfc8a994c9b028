"""How long a run is silent, as a log file sees it: the first line and the longest gap between lines.

    python benchmarks/output_gaps.py --data-dir DATA      # → benchmarks/results/output-gaps-<capability>.md

DATA holds ``cifar-10-batches-py/`` and ``cifar10-images/`` (``python ../shared/data/prepare.py DATA
--imagefolder``). Each case runs the real command with stderr and stdout piped (not a terminal, as under a
scheduler), timestamps every line, and stops it with Ctrl-C (SIGINT) after ``--seconds``:

- ``too-large``: the 3,000-PNG tree of ``too_large.py`` at ``--image-size 2048``, batch 4 (streamed, channel
  statistics from a sample, a slow first step);
- ``resnet18``: ``zoo train cifar10 resnet18`` with its GPU-sized recipe (a step of tens of seconds here, a
  run of days: the pre-flight line).

Goals (issue 34): a first line within 10 s, never more than 30 s between lines.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from too_large import MODEL, make_tree

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def run_case(command: list[str], seconds: float, env: dict[str, str]) -> dict:
    """Run ``zoo COMMAND`` for ``seconds``, then Ctrl-C; every line of output with its time."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "zoo_core", *command],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[tuple[float, str]] = []

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            t = time.perf_counter() - start
            lines.append((t, line.rstrip()))
            print(f"{t:7.1f}s  {line.rstrip()}", file=sys.stderr, flush=True)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    interrupted = None
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        interrupted = time.perf_counter() - start
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=600)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    stopped = time.perf_counter() - start
    reader.join(timeout=5)
    # the silences: from the start to the first line, between lines, and from the last one to Ctrl-C
    times = [0.0, *[t for t, _ in lines if interrupted is None or t <= interrupted]]
    ends = [*times[1:], interrupted if interrupted is not None else times[-1]]
    gaps = [(b - a, i) for i, (a, b) in enumerate(zip(times, ends, strict=True))]
    longest, at = max(gaps)
    after = lines[at][1] if at < len(lines) and (interrupted is None or at < len(times) - 1) else "(Ctrl-C)"
    return {
        "command": "zoo " + " ".join(command),
        "seconds": stopped,
        "returncode": proc.returncode,
        "first_line_s": lines[0][0] if lines else None,
        "longest_gap_s": longest,
        "after_longest_gap": after,
        "preflight": next((line for _, line in lines if line.startswith("zoo: warning: at ")), None),
        "lines": [f"{t:7.1f}s  {line}" for t, line in lines],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("ZOO_DATA", "/tmp/zoo-data")))
    parser.add_argument("--work", type=Path, default=Path("/tmp/zoo-output-gaps"))
    parser.add_argument("--seconds", type=float, default=240.0, help="per case, before Ctrl-C")
    parser.add_argument("--cases", default="too-large,resnet18")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()

    from zoo_core.bench import describe_machine
    from zoo_core.device import cpu_capability

    source = args.data_dir / "cifar10-images"
    if not (source / "train").is_dir() or not (args.data_dir / "cifar-10-batches-py").is_dir():
        sys.exit(
            f"{args.data_dir} lacks the data: python ../shared/data/prepare.py {args.data_dir} --imagefolder"
        )
    import shutil

    shutil.rmtree(args.work / "runs", ignore_errors=True)
    shutil.rmtree(args.work / "cache", ignore_errors=True)  # a cold start, as a new user has
    tree = make_tree(source, args.work / "tree", 300, 10)
    env = {**os.environ, "ZOO_CACHE": str(args.work / "cache"), "PYTHONUNBUFFERED": "1"}
    cases = {
        "too-large": [
            *("train", "imagefolder", MODEL, "--data-dir", str(tree)),
            *("--image-size", "2048", "--batch-size", "4", "--epochs", "1"),
        ],
        "resnet18": ["train", "cifar10", "resnet18", "--data-dir", str(args.data_dir)],
    }
    results = {}
    for name in args.cases.split(","):
        command = [*cases[name], "--out", str(args.work / "runs" / name), "--no-tensorboard"]
        results[name] = run_case(command, args.seconds, env)
    doc = {
        "machine": describe_machine("cpu"),
        "capability": cpu_capability(),
        "seconds": args.seconds,
        "cases": results,
    }
    output = args.output or RESULTS / f"output-gaps-{cpu_capability().lower()}.md"
    output.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    output.write_text(render(doc))
    print(f"wrote {output}", file=sys.stderr)


def render(doc: dict) -> str:
    out = [
        "# How long a run is silent, as a log file sees it",
        "",
        f"- Machine: {doc['machine']}; CPU capability {doc['capability']} (a load above the core count means "
        "other processes shared the cores: the steps are slower, the silences are what is measured)",
        "- Output piped (not a terminal); each case stopped with Ctrl-C after "
        f"{doc['seconds']:.0f} s; `python benchmarks/output_gaps.py`",
        "- Goals: a first line within 10 s of the command, never more than 30 s without a line",
        "",
        "| case | first line | longest gap | the line after the longest gap | pre-flight line |",
        "|---|---:|---:|---|---|",
    ]
    for name, case in doc["cases"].items():
        first = "—" if case["first_line_s"] is None else f"{case['first_line_s']:.1f} s"
        preflight = "yes" if case["preflight"] else "no"
        after = case["after_longest_gap"][:90]
        out.append(f"| {name} | {first} | {case['longest_gap_s']:.1f} s | `{after}` | {preflight} |")
    for name, case in doc["cases"].items():
        out += ["", f"## {name}", "", f"`{case['command']}` (exit {case['returncode']})", "", "```"]
        out += case["lines"][:80] + (["…"] if len(case["lines"]) > 80 else []) + ["```"]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
