"""Throughput of zoo's on-device data pipeline against the usual tutorial pipeline, and data set load times.

    python benchmarks/data_pipeline.py --data-dir DATA [--device cpu|cuda] [--output FILE]

DATA holds the real CIFAR-10 as laid out by ``python ../shared/data/prepare.py DATA --imagefolder``
(``cifar-10-batches-py/`` and ``cifar10-images/``). Measured:
- img/s of ``DeviceLoader`` (random crop with padding 4 + horizontal flip + normalize, batch 512, the train
  split already on the device), a whole epoch per run;
- img/s of the tutorial pipeline: a DataLoader over PIL images with per-image RandomCrop(32, padding=4),
  RandomHorizontalFlip, ToTensor, Normalize, with 0 and 2 workers, batches moved to the device;
- seconds to load the CIFAR-10 pickle set (train + test), and the 60,000-JPEG ImageFolder tree cold (no zoo
  cache; the operating system's file cache may be warm) and cached.
Each pipeline runs after a warm-up epoch; the median and the best of several runs are reported (on a shared
machine the best run shows what the code can do, the median what it did).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import torch

from zoo_core.bench import describe_machine
from zoo_core.data.loader import DeviceLoader
from zoo_plugins.datasets.cifar10 import MEAN, STD, cifar10
from zoo_plugins.datasets.imagefolder import read_image_tree

HERE = Path(__file__).resolve().parent


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], int], runs: int, device: torch.device) -> list[float]:
    """img/s of each of ``runs`` calls of ``fn`` (which returns the images it produced), after a warm-up."""
    fn()
    rates = []
    for _ in range(runs):
        sync(device)
        start = time.perf_counter()
        n = fn()
        sync(device)
        rates.append(n / (time.perf_counter() - start))
    return rates


def device_loader_rate(images: torch.Tensor, labels: torch.Tensor, device: torch.device, args) -> list[float]:
    loader = DeviceLoader(
        images,
        labels,
        batch_size=args.batch_size,
        device=device,
        mean=MEAN,
        std=STD,
        train=True,
        crop_padding=4,
        flip=True,
        channels_last=device.type == "cuda",
    )
    epoch = iter(range(10**9))

    def run() -> int:
        loader.set_epoch(next(epoch))
        n = 0
        for x, _ in loader:
            n += x.shape[0]
        return n

    return timed(run, args.runs, device)


class TutorialCIFAR(torch.utils.data.Dataset):
    """What torchvision's CIFAR10 does per item: a PIL image from the HWC array, then the transform."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform) -> None:
        self.data = images.permute(0, 2, 3, 1).numpy()
        self.targets = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.data[i])), self.targets[i]


def tutorial_rate(
    images: torch.Tensor, labels: torch.Tensor, device: torch.device, workers: int, args
) -> tuple:
    from torchvision import transforms

    transform = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(MEAN, STD),
        ]
    )
    subset = slice(0, args.tutorial_images)
    dataset = TutorialCIFAR(images[subset], labels[subset], transform)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=args.batch_size,
        shuffle=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        drop_last=True,
    )

    def run() -> int:
        n = 0
        for x, y in loader:  # an epoch of the subset, worker start-up included as in every tutorial epoch
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            n += x.shape[0]
        return n

    return timed(run, args.tutorial_runs, device)


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("ZOO_DATA", "~/.cache/zoo")))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tutorial-images", type=int, default=10240, help="images per tutorial epoch")
    parser.add_argument("--tutorial-runs", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="*", default=[0, 2])
    parser.add_argument("--skip-load", action="store_true", help="skip the load-time measurements")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    device = torch.device(args.device)
    data_dir = args.data_dir.expanduser()
    output = args.output or HERE / "results" / f"data-pipeline-{device.type}.md"
    print(f"machine: {describe_machine(device)}", file=sys.stderr)

    rows = []
    load_rows = []
    if not args.skip_load:
        t = seconds(
            lambda: (
                cifar10(root=data_dir, split="train", format="pickle"),
                cifar10(root=data_dir, split="test", format="pickle"),
            )
        )
        load_rows.append(("CIFAR-10 pickle batches, train + test (60,000 images)", t))
        with tempfile.TemporaryDirectory() as cache:
            tree = data_dir / "cifar10-images"

            def load_tree() -> None:
                for split in ("train", "test"):
                    read_image_tree(tree, split, cache_dir=Path(cache))

            load_rows.append(("CIFAR-10 ImageFolder tree, 60,000 JPEGs, cold (decoded)", seconds(load_tree)))
            load_rows.append(("CIFAR-10 ImageFolder tree, 60,000 JPEGs, cached", seconds(load_tree)))
        for name, t in load_rows:
            print(f"{name}: {t:.2f} s", file=sys.stderr)

    train = cifar10(root=data_dir, split="train", format="pickle")
    ours = device_loader_rate(train.images, train.labels, device, args)
    print(
        f"DeviceLoader: median {statistics.median(ours):,.0f} img/s, best {max(ours):,.0f}", file=sys.stderr
    )
    rows.append((f"zoo DeviceLoader (crop+flip+normalize on {device.type}, 50,000 images/epoch)", ours))
    for workers in args.workers:
        rates = tutorial_rate(train.images, train.labels, device, workers, args)
        print(f"tutorial, {workers} workers: median {statistics.median(rates):,.0f} img/s", file=sys.stderr)
        rows.append((f"tutorial DataLoader + PIL transforms, {workers} workers", rates))

    lines = [
        f"# Data pipeline throughput ({device.type})",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `python benchmarks/data_pipeline.py "
        f"--data-dir DATA --device {args.device} --runs {args.runs}` (batch {args.batch_size}; "
        f"{args.runs} epochs of 50,000 images for zoo, {args.tutorial_runs} epochs of "
        f"{args.tutorial_images:,} images for the tutorial, each after a warm-up epoch).",
        "",
        f"Machine: {describe_machine(device)}.",
        "",
        "Data: CIFAR-10 (JPEG q75 copy) train split, 50,000 × 3×32×32. On a machine shared with other jobs "
        "the multi-threaded tensor kernels of zoo's pipeline lose more to a busy core than the tutorial's "
        "per-image Python work does: the best run shows what the code can do, the median what it did.",
        "",
        "| pipeline | img/s median | img/s best | each run | zoo ÷ this (median) | zoo ÷ this (best) |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for name, rates in rows:
        median, best = statistics.median(rates), max(rates)
        each = ", ".join(f"{r:,.0f}" for r in rates)
        lines.append(
            f"| {name} | {median:,.0f} | {best:,.0f} | {each} | "
            f"{statistics.median(ours) / median:.1f}× | {max(ours) / best:.1f}× |"
        )
    if load_rows:
        lines += ["", "| load | seconds |", "|---|---:|"]
        lines += [f"| {name} | {t:.2f} |" for name, t in load_rows]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join(lines) + "\n")
    print(f"wrote {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
