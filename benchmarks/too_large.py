"""The case that used to fail after minutes: an ImageFolder far larger than memory, as a new user trains it.

    python benchmarks/too_large.py --data-dir DATA      # → benchmarks/results/too-large-<capability>.md

DATA holds ``cifar10-images/`` (``python ../shared/data/prepare.py DATA --imagefolder``). The tree: the first
300 training PNGs of each CIFAR-10 class (3,000 images, 32×32) and 10 of each test class, hard-linked into
``--work``. ``zoo train imagefolder timm/mobilenetv3_small_050 --image-size 2048`` with no data option: as
uint8 at the stored size (2048 / 0.875 = 2341 px a side) the split needs ~49 GB, twice that while decoding.
Reported: the seconds until the memory plan's line, until the first training step is logged (streamed),
and the process's peak RSS; the run is then stopped with Ctrl-C (SIGINT), which saves a resumable state.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MODEL = "timm/mobilenetv3_small_050"  # cheap enough at 2048² that the first step comes in seconds


def make_tree(source: Path, root: Path, per_class: int, test_per_class: int) -> Path:
    for split, count in (("train", per_class), ("test", test_per_class)):
        for folder in sorted((source / split).iterdir()):
            target = root / split / folder.name
            target.mkdir(parents=True, exist_ok=True)
            for path in sorted(folder.iterdir())[:count]:
                if not (target / path.name).exists():
                    os.link(path, target / path.name)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("ZOO_DATA", "/tmp/zoo-data")))
    parser.add_argument("--work", type=Path, default=Path("/tmp/zoo-too-large"))
    parser.add_argument("--per-class", type=int, default=300)
    parser.add_argument("--image-size", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="training steps logged before Ctrl-C")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()

    from zoo_core.bench import describe_machine
    from zoo_core.device import cpu_capability

    source = args.data_dir / "cifar10-images"
    if not (source / "train").is_dir():
        sys.exit(f"{source} is missing: python ../shared/data/prepare.py {args.data_dir} --imagefolder")
    tree = make_tree(source, args.work / "tree", args.per_class, 10)
    run = args.work / "run"
    if run.exists():
        import shutil

        shutil.rmtree(run)
    command = [sys.executable, "-m", "zoo_core", "train", "imagefolder", MODEL, "--data-dir", str(tree)]
    command += ["--image-size", str(args.image_size), "--batch-size", str(args.batch_size), "--epochs", "1"]
    command += ["--log-every", "1", "--out", str(run), "--no-tensorboard"]
    env = {**os.environ, "ZOO_CACHE": str(args.work / "cache"), "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    lines: list[tuple[float, str]] = []
    marks: dict[str, float] = {}
    steps = 0

    def read(stream) -> None:
        nonlocal steps
        for line in stream:
            t = time.perf_counter() - start
            lines.append((t, line.rstrip()))
            print(f"{t:7.1f}s  {line.rstrip()}", file=sys.stderr, flush=True)
            if "streaming from disk" in line and "plan" not in marks:
                marks["plan"] = t
            if re.search(r"step \d+/\d+", line):
                steps += 1
                marks.setdefault("first_step", t)
                if steps >= args.steps and "stop" not in marks:
                    marks["stop"] = t
                    proc.send_signal(signal.SIGINT)

    readers = [threading.Thread(target=read, args=(s,), daemon=True) for s in (proc.stderr, proc.stdout)]
    for r in readers:
        r.start()
    try:
        proc.wait(timeout=1800)
    except subprocess.TimeoutExpired:
        proc.kill()
    for r in readers:
        r.join(timeout=5)
    rss_kb = None
    try:
        import resource

        rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    except ImportError:
        pass
    doc = {
        "machine": describe_machine("cpu"),
        "command": " ".join(["zoo", *command[3:]]),
        "images": sum(1 for _ in (tree / "train").rglob("*.png")),
        "plan_s": marks.get("plan"),
        "first_step_s": marks.get("first_step"),
        "returncode": proc.returncode,
        "peak_rss_mb": rss_kb / 1024 if rss_kb else None,
        "resumable": (run / "last.pt").is_file(),
        "lines": [f"{t:.1f}s {line}" for t, line in lines if "step" not in line or "plan" in line][:12],
    }
    output = args.output or RESULTS / f"too-large-{cpu_capability().lower()}.md"
    output.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    output.write_text(render(doc, args))
    print(f"wrote {output}", file=sys.stderr)


def render(doc: dict, args: argparse.Namespace) -> str:
    def seconds(v: float | None) -> str:
        return "—" if v is None else f"{v:.1f} s"

    return "\n".join(
        [
            "# An ImageFolder far larger than memory, as a new user trains it",
            "",
            f"- Machine: {doc['machine']}",
            f"- Command: `{doc['command']}` (ZOO_CACHE in the work folder), stopped with Ctrl-C after "
            f"{args.steps} logged steps",
            f"- Tree: {doc['images']:,} CIFAR-10 training PNGs (32×32, {args.per_class} a class) at "
            f"--image-size {args.image_size}",
            "",
            "| what | result |",
            "|---|---|",
            f"| the memory plan's line | {seconds(doc['plan_s'])} after the command started (goal ≤ 10 s) |",
            f"| the first training step, streamed | {seconds(doc['first_step_s'])} |",
            f"| peak RSS of the training process | {doc['peak_rss_mb']:,.0f} MB |"
            if doc["peak_rss_mb"]
            else "| peak RSS | — |",
            f"| after Ctrl-C | exit {doc['returncode']}, last.pt written: {doc['resumable']} |",
            "",
            "What the run said (stderr and stdout, step lines left out):",
            "",
            "```",
            *doc["lines"],
            "```",
            "",
        ]
    )


if __name__ == "__main__":
    main()
