"""What a DataLoader worker pays to stack a batch into a fresh shared-memory buffer (PyTorch's default
collation, and zoo's before ``zoo_core.data.batch_buffers``) against a buffer it reuses, on one thread.

    python benchmarks/batch_buffers.py --output benchmarks/results/batch-buffers-cpu-amx.md

Each batch: 64 random 224 × 224 RGB uint8 images, channels_last, stacked by zoo's ``Collate`` as a worker
does it, into float32 normalized (what a CPU's workers hand over) or uint8 (what goes to a GPU); the
buffer either fresh every batch or a slot of ``BatchBuffers`` freed after each batch. ``--rounds``
alternating rounds of ``--batches`` timed batches after 2; the median round's milliseconds a batch and a
photo. The worker is faked in this process (``get_worker_info`` patched), so nothing else is timed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import torch

N, SIZE = 64, 224


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()

    from zoo_core.bench import describe_machine
    from zoo_core.data.batch_buffers import BatchBuffers
    from zoo_core.data.ops import Normalize
    from zoo_core.data.workers import Collate

    torch.set_num_threads(1)  # a DataLoader worker's
    g = torch.Generator().manual_seed(0)
    images = [torch.randint(0, 256, (SIZE, SIZE, 3), generator=g, dtype=torch.uint8).permute(2, 0, 1)]
    images = [(images[0].roll(k, 1), k % 10) for k in range(N)]
    normalizer = Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    sides = {}
    for kind, norm in (("float32 normalized", normalizer), ("uint8", None)):
        sides[kind, "fresh"] = Collate(True, norm)
        sides[kind, "reused"] = Collate(True, norm, BatchBuffers(1))
    times: dict[tuple[str, str], list[float]] = {key: [] for key in sides}
    with mock.patch("torch.utils.data.get_worker_info", return_value=SimpleNamespace(id=0)):
        for r in range(args.rounds):
            order = list(sides) if r % 2 == 0 else list(reversed(sides))
            for key in order:
                collate = sides[key]
                for b in range(2 + args.batches):
                    if b == 2:
                        start = time.perf_counter()
                    x, _ = collate(images)
                    collate.buffers.table.zero_()  # the main process let go of it
                    del x
                times[key].append((time.perf_counter() - start) / args.batches * 1e3)
    lines = [
        "# Stacking a batch in a worker: a fresh shared-memory buffer against a reused one",
        "",
        f"- Machine: {describe_machine(torch.device('cpu'))}",
        f"- Command: `python {' '.join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])}`",
        f"- {N} images of {SIZE}×{SIZE}×3 a batch, channels_last, one thread; {args.rounds} alternating"
        f" rounds of {args.batches} batches after 2; the median round.",
        "",
        "| batch | buffer | ms a batch | ms a photo | rounds (ms a batch) |",
        "|---|---|---:|---:|---|",
    ]
    for (kind, buffer), values in times.items():
        median = statistics.median(values)
        rounds = ", ".join(f"{v:.1f}" for v in values)
        lines.append(f"| {kind} | {buffer} | {median:.1f} | {median / N:.3f} | {rounds} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
