"""Two versions of zoo's code on one machine, side by side, in alternating rounds: fastnet's training steps
fed by the loader its recipe builds (CIFAR-10 held on the device), the DeviceLoader alone, and streamed
wds shards and ImageFolder photos.

    python benchmarks/data_path_side_by_side.py --before /tmp/zoo-base --after . --data-dir DATA \
        --output benchmarks/results/data-path-side-by-side-cpu.md

``--before`` and ``--after`` are checkouts (``git archive REV | tar -x -C DIR``); each round runs one fresh
process per side (``python -P`` with ``PYTHONPATH`` set to its checkout; each job says which zoo_core it
ran, and a job that ran another is an error), before then after, then the next round after then before.
fastnet: ``--batches`` training steps of batch ``--batch-size`` (SGD, the recipe's crop, flip,
channels_last, fp32) after ``--warmup``, on CIFAR-10's training split; img/s of the timed steps.
DeviceLoader: ``--loader-epochs`` whole epochs of that split after a warm-up one, the loader alone.
``--shards`` / ``--photos``: ``--stream-batches`` batches of a wds or imagefolder set streamed as zoo train
reads it on a CPU (224 px ImageNet-style, 2 workers, batch 64), after 5.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

STEP = r"""
import json, sys, time
import torch
from zoo_core import create_dataset, create_model
from zoo_core.data.loader import make_loader
data = create_dataset("cifar10", root=sys.argv[1], split="train")
batch, warmup, timed = (int(v) for v in sys.argv[2:5])
loader = make_loader(data, batch_size=batch, device="cpu", train=True, crop_padding=2, padding_mode="reflect",
                     flip=True, alternate_flip=True, channels_last=True, seed=0)
model = create_model("fastnet", num_classes=10).to(memory_format=torch.channels_last)
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.85, nesterov=True)
batches = iter(loader)
for k in range(warmup + timed):
    if k == warmup:
        start = time.perf_counter()
    x, y = next(batches)
    loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
rate = timed * batch / (time.perf_counter() - start)
print(json.dumps({"img_per_s": rate, "code": sys.modules["zoo_core"].__file__}))
"""


# the DeviceLoader alone: whole epochs of CIFAR-10's training split (padded crop, flip, normalization,
# channels_last), after one warm-up epoch
LOADER = r"""
import json, sys, time
import torch
from zoo_core import create_dataset
from zoo_core.data.loader import make_loader
data = create_dataset("cifar10", root=sys.argv[1], split="train")
batch, epochs = int(sys.argv[2]), int(sys.argv[3])
loader = make_loader(data, batch_size=batch, device="cpu", train=True, crop_padding=4, flip=True,
                     channels_last=True, seed=0)
start, images = time.perf_counter(), 0
for epoch in range(epochs + 1):  # epoch 0 warms up
    if epoch == 1:
        start, images = time.perf_counter(), 0
    loader.set_epoch(epoch)
    for x, _ in loader:
        images += len(x)
rate = images / (time.perf_counter() - start)
print(json.dumps({"img_per_s": rate, "code": sys.modules["zoo_core"].__file__}))
"""
# a streamed data set read as zoo train reads it on a CPU (ImageNet-style at 224, 2 workers, batch 64)
STREAM = r"""
import json, sys, time
from pathlib import Path
from zoo_core import create_dataset
from zoo_core.allocator import keep_freed_memory
from zoo_core.data.loader import make_loader
keep_freed_memory()
name, root, options = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
warmup, timed = int(sys.argv[4]), int(sys.argv[5])
data = create_dataset(name, root=root, split="train", image_size=224, **options)
loader = make_loader(data, batch_size=64, device="cpu", train=True, flip=True, resized_crop=True,
                     num_workers=2, channels_last=True)
batches = iter(loader)
for _ in range(warmup):
    next(batches)
start = time.perf_counter()
for _ in range(timed):
    next(batches)
rate = timed * 64 / (time.perf_counter() - start)
print(json.dumps({"img_per_s": rate, "code": sys.modules["zoo_core"].__file__}))
"""
WHAT = {
    "wds": "wds shards streamed as zoo train reads them on a CPU (224 ImageNet-style, 2 workers, batch 64)",
    "imagefolder": "imagefolder photos streamed as zoo train reads them on a CPU (as wds)",
    "steps": "fastnet training steps, CIFAR-10 held in memory",
    "loader": "DeviceLoader epochs alone (padded crop 4, flip, normalization, channels_last), CIFAR-10",
}


def run(code: Path, args: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code.resolve())}
    # -P: `python -c` would put the working directory first on sys.path, ahead of PYTHONPATH, and run the
    # checkout the benchmark is started from on both sides
    command = [sys.executable, "-P", *args]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if not Path(result["code"]).resolve().is_relative_to(code.resolve()):
        raise SystemExit(f"the job ran {result['code']}, not the checkout {code}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--after", type=Path, required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batches", type=int, default=8, help="timed fastnet steps (0: none)")
    parser.add_argument("--loader-epochs", type=int, default=2, help="timed DeviceLoader epochs (0: none)")
    parser.add_argument("--shards", help="a folder of wds shards (train-*.tar) to stream too")
    parser.add_argument("--photos", help="an ImageFolder tree of photos to stream too")
    parser.add_argument("--stream-batches", type=int, default=40, help="timed streamed batches, after 5")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    sides = {"before": args.before, "after": args.after}
    jobs: dict[str, list[str]] = {}
    if args.batches:
        jobs["steps"] = ["-c", STEP, args.data_dir, str(args.batch_size), str(args.warmup), str(args.batches)]
    if args.loader_epochs:
        jobs["loader"] = ["-c", LOADER, args.data_dir, str(args.batch_size), str(args.loader_epochs)]
    streamed = (("wds", args.shards, {}), ("imagefolder", args.photos, {"data_mode": "stream"}))
    for what, root, options in streamed:
        if root:
            jobs[what] = ["-c", STREAM, what, root, json.dumps(options), "5", str(args.stream_batches)]
    rounds = {(what, name): [] for what in jobs for name in sides}
    for r in range(args.rounds):
        for what, job in jobs.items():
            for name in sides if r % 2 == 0 else reversed(list(sides)):
                rounds[what, name].append(run(sides[name], job)["img_per_s"])
                print(f"round {r + 1} {what} {name}: {rounds[what, name][-1]:.1f} img/s", file=sys.stderr)
    median = {key: statistics.median(values) for key, values in rounds.items()}
    lines = []
    for what in jobs:
        lines += [
            WHAT[what]
            + (f", batch {args.batch_size}" if what in ("steps", "loader") else "")
            + (f", {args.batches} timed after {args.warmup}" if what == "steps" else "")
            + f", {args.rounds} alternating rounds",
            "",
            "| side | checkout | median img/s | rounds |",
            "|---|---|---:|---|",
            *(
                f"| {name} | {sides[name]} | {median[what, name]:.1f} | "
                f"{', '.join(f'{v:.1f}' for v in rounds[what, name])} |"
                for name in sides
            ),
            "",
            f"after / before: {median[what, 'after'] / median[what, 'before']:.3f}",
            "",
        ]
    text = "\n".join(lines)
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
