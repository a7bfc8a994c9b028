"""Cold start of `zoo list` beside timm's and torchvision's model listings (issue 2).

Each command runs in a fresh interpreter, 10 times; we report the median and the spread. Run:
    python benchmarks/cli_startup.py --output benchmarks/results/cli-startup.md
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from zoo_core.bench import describe_machine

COMMANDS = {
    "zoo list": [shutil.which("zoo") or "zoo", "list"],
    "zoo --help": [shutil.which("zoo") or "zoo", "--help"],
    "timm.list_models()": [sys.executable, "-c", "import timm; timm.list_models()"],
    "torchvision.models.list_models()": [
        sys.executable,
        "-c",
        "import torchvision; torchvision.models.list_models()",
    ],
}


def time_command(command: list[str], runs: int) -> list[float]:
    subprocess.run(command, capture_output=True, check=True)  # warm the OS file cache once
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()

    lines = [
        "# Cold start of listing commands",
        "",
        f"Machine: {describe_machine('cpu')}; "
        f"{time.strftime('%Y-%m-%d')}. Each command in a fresh process, median of {args.runs} "
        "(after one untimed run to warm the file cache).",
        "",
        "| command | median s | min s | max s |",
        "|---|---|---|---|",
    ]
    for name, command in COMMANDS.items():
        times = time_command(command, args.runs)
        lines.append(f"| `{name}` | {statistics.median(times):.3f} | {min(times):.3f} | {max(times):.3f} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if args.output:
        args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
