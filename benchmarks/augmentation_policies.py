"""The augmentation policies against torchvision's per-image v2 transforms, and the op kernels' oracle table.

A 1,024-image CIFAR-10 batch (the test split from /tmp/zoo-data when present, else random uint8): zoo's
policy on the normalized float batch, as the trainer calls it, against torchvision's ``RandAugment``,
``TrivialAugmentWide`` and ``AutoAugment(CIFAR10)`` applied to each uint8 image in turn. Warm-up, then the
median of several runs. Also: zoo's other way of running a policy (by groups of the images that drew each
operation, or every operation on the whole batch), the cost of the elementary passes over the batch, off the
CPU both ways on 256 images of 224×224 (``--large``), and the oracle table: every op's largest difference
from torchvision in grey levels.

    OMP_NUM_THREADS=1 python benchmarks/augmentation_policies.py   # → results/augmentations-policies-cpu.md
    python benchmarks/augmentation_policies.py --device cuda        # zoo on the GPU; torchvision on the CPU
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torchvision.transforms import v2

import zoo_core
from zoo_core.allocator import keep_freed_memory
from zoo_core.bench import describe_machine
from zoo_core.data.ops import normalize
from zoo_core.device import default_channels_last
from zoo_plugins.augmentations._policy import MASKED_MAX, apply_policy, levels_from, levels_to

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
POLICIES = [
    ("randaugment", v2.RandAugment(num_ops=2, magnitude=9)),
    ("trivialaugment", v2.TrivialAugmentWide()),
    ("autoaugment", v2.AutoAugment(v2.AutoAugmentPolicy.CIFAR10)),
]


def images(n: int) -> tuple[torch.Tensor, str]:
    try:
        data = zoo_core.create_dataset("cifar10", root=Path("/tmp/zoo-data"), split="test")
        return data.images[:n].contiguous(), "CIFAR-10 test images (the pickle set in /tmp/zoo-data)"
    except Exception:  # no data here: random images time the same work
        return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8), "random uint8 images"


def rate(fn, count: int, runs: int, warmup: int, device: str = "cpu") -> float:
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    rates = []
    for _ in range(runs):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def passes(x: torch.Tensor, runs: int, warmup: int, device: str) -> list[tuple[str, float]]:
    """Milliseconds of the elementary passes over the whole batch that a policy in eager PyTorch is built
    from: what bounds its speed from below, whatever the operations."""
    order = torch.randperm(len(x), device=x.device)
    flat = x.contiguous()
    work = flat.clone()
    other = torch.empty_like(
        x, memory_format=torch.contiguous_format if flat is not x else torch.channels_last
    )
    to_levels, from_levels = levels_from(MEAN, STD, x.device), levels_to(MEAN, STD, x.device)
    steps = [
        ("a copy of the batch (`clone`)", lambda: flat.clone()),
        (
            "a gather of its images in a new order (`index_select`, same layout)",
            lambda: flat.index_select(0, order),
        ),
        (
            "a gather into the other memory format (channels_last ↔ contiguous)",
            lambda: torch.index_select(x, 0, order, out=other),
        ),
        ("one in-place elementwise pass (`mul_`)", lambda: work.mul_(1.0)),
        (
            "to whole levels (multiply, add, round, clamp) and back (multiply, add)",
            lambda: from_levels(to_levels(work)),
        ),
    ]
    return [(what, 1e3 / rate(fn, 1, runs, warmup, device)) for what, fn in steps]


def one_way(aug, x: torch.Tensor, gen: torch.Generator, grouped: bool) -> Callable[[], torch.Tensor]:
    """A call of the policy ``aug`` on ``x`` that goes by groups or takes the whole batch, as told."""
    return lambda: apply_policy(
        x, aug.draw(len(x), tuple(x.shape[-2:]), x.device, gen), aug.ops, MEAN, STD, grouped=grouped
    )


def both_ways(x: torch.Tensor, runs: int, warmup: int, device: str) -> list[tuple[str, float, float]]:
    """(policy, img/s by groups, img/s on the whole batch) on the batch ``x``: where the two ways cross is
    what ``_policy.MASKED_MAX`` estimates."""
    rows = []
    for name, _ in POLICIES:
        aug = zoo_core.create_augmentation(name, num_classes=10, mean=MEAN, std=STD)
        gen = torch.Generator(device=x.device).manual_seed(0)
        rates = [
            rate(one_way(aug, x, gen, grouped), len(x), runs, warmup, device) for grouped in (True, False)
        ]
        rows.append((name, *rates))
        print(
            f"{name:15s} {tuple(x.shape)}: by groups {rates[0]:10,.0f} img/s, whole batch {rates[1]:10,.0f}"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="where zoo's kernels run (torchvision: the CPU)")
    parser.add_argument(
        "--layout",
        choices=["auto", "contiguous", "channels_last"],
        default="auto",
        help="the batch's memory format; auto: what zoo train uses on the device (channels_last on a CPU)",
    )
    parser.add_argument(
        "--large",
        type=int,
        help="also time zoo's two ways on this many 224×224 images (default: 256 off the CPU, none on it)",
    )
    parser.add_argument("--output", type=Path, help="default: results/augmentations-policies-<device>.md")
    args = parser.parse_args()
    device = torch.device(args.device)
    allocator = "glibc's defaults (ZOO_MALLOC=system)"
    if device.type == "cpu" and keep_freed_memory():  # the process as zoo train runs it on a CPU
        allocator = "zoo's setting (zoo_core.allocator: freed blocks kept and reused), as zoo train sets it"
    output = args.output or RESULTS / f"augmentations-policies-{device.type}.md"
    u, source = images(args.batch_size)
    x = normalize(u.to(device), MEAN, STD)
    layout = args.layout
    if layout == "auto":
        layout = "channels_last" if default_channels_last(device.type) else "contiguous"
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.zeros(len(u), dtype=torch.long, device=device)
    load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    rows = []
    grouped = device.type == "cpu" or x.numel() > MASKED_MAX  # what apply_policy does by default
    paths = ("by groups", "whole batch") if grouped else ("whole batch", "by groups")
    for name, tv in POLICIES:
        aug = zoo_core.create_augmentation(name, num_classes=10, mean=MEAN, std=STD)
        gen = torch.Generator(device=device).manual_seed(0)
        zoo_rate = rate(lambda aug=aug, gen=gen: aug(x, y, gen), len(u), args.runs, args.warmup, args.device)
        # the other way zoo can run a policy: by groups where the default is the whole batch, and back
        other = rate(
            one_way(aug, x, gen, not grouped),
            len(u),
            args.runs,
            args.warmup,
            args.device,
        )
        torch.manual_seed(0)
        tv_rate = rate(lambda tv=tv: [tv(img) for img in u], len(u), args.runs, args.warmup)
        rows.append((name, zoo_rate, other, tv_rate))
        print(
            f"{name:15s} zoo {zoo_rate:10,.0f} img/s (other path {other:10,.0f})  torchvision {tv_rate:8,.0f}"
            f" img/s  ×{zoo_rate / tv_rate:.1f}"
        )

    costs = passes(x, max(args.runs, 9), args.warmup + 2, args.device)
    large = args.large if args.large is not None else (0 if device.type == "cpu" else 256)
    big: list[tuple[str, float, float]] = []
    if large:
        pixels = u[:large].to(device).float()
        pixels = torch.nn.functional.interpolate(
            pixels, size=(224, 224), mode="bilinear", align_corners=False
        )
        big_x = normalize(pixels.round_().clamp_(0, 255).to(torch.uint8), MEAN, STD)
        if layout == "channels_last":
            big_x = big_x.contiguous(memory_format=torch.channels_last)
        big = both_ways(big_x, args.runs, args.warmup, args.device)
    sys.path.insert(0, str(ROOT.parent / "tests"))
    from test_augmentations_policies import MAGNITUDES, max_difference, oracle_images

    from zoo_plugins.augmentations.ops import OPS

    oracle = [(op, max_difference(op, oracle_images()), len(MAGNITUDES[op])) for op in OPS]
    least = min(z / t for _, z, _, t in rows)
    goal = f"{'reached' if least >= 20 else 'not reached'} (the least speed-up: {least:.1f}×)"
    if device.type != "cpu":
        goal += f"; zoo on {device.type}, torchvision on this machine's CPU"
    lines = [
        f"# Augmentation policies on the {device.type.upper()}: zoo's batch kernels vs torchvision v2 per "
        "image (on the CPU)",
        "",
        f"- machine: {describe_machine(device)}",
        f"- {args.batch_size} {source}, 3×32×32; zoo: the normalized float32 batch in and out, {layout} "
        "(what the trainer passes), torchvision: each uint8 image through the v2 transform alone",
        f"- goal ≥ 20× over torchvision on the CPU: {goal}",
        f"- malloc: {allocator}" if device.type == "cpu" else "- malloc: not in play (zoo on the GPU)",
        f"- median of {args.runs} runs after {args.warmup} warm-up; "
        f"load average before / after (the machine is shared): {load_before} / "
        + " ".join(f"{v:.2f}" for v in os.getloadavg()),
        "- command: `"
        + ("OMP_NUM_THREADS=1 " if device.type == "cpu" else "")
        + " ".join(["python", "benchmarks/augmentation_policies.py", *sys.argv[1:]])
        + "`",
        f"- zoo runs each policy {paths[0]} on a {device.type.upper()} (`apply_policy`'s default: by groups "
        "of the images that drew each operation on a CPU; elsewhere every operation on the whole batch, with "
        f"no wait for the device); the {paths[1]} column times the other way, for comparison",
        "",
        f"| policy | zoo img/s ({paths[0]}) | zoo img/s ({paths[1]}) | torchvision v2 per image img/s "
        "| speed-up |",
        "|---|---:|---:|---:|---:|",
        *(f"| `{n}` | {z:,.0f} | {o:,.0f} | {t:,.0f} | {z / t:.1f}× |" for n, z, o, t in rows),
        "",
        "## What one pass over the batch costs here",
        "",
        "The elementary passes a policy in eager PyTorch is built from, over the same "
        f"{args.batch_size} images ({layout}, float32, {x.numel() * 4 / 2**20:.1f} MiB), "
        f"median of {max(args.runs, 9)} runs:",
        "",
        "| pass | ms |",
        "|---|---:|",
        *(f"| {what} | {ms:.2f} |" for what, ms in costs),
        "",
        *(
            [
                f"## zoo's two ways on {large} images of 224×224 ({large * 3 * 224 * 224:,} values)",
                "",
                "The CIFAR images above, resized. Off the CPU, zoo takes the whole batch up to "
                f"`_policy.MASKED_MAX` = {MASKED_MAX:,} values and goes by groups past it.",
                "",
                "| policy | by groups img/s | whole batch img/s |",
                "|---|---:|---:|",
                *(f"| `{n}` | {g:,.0f} | {w:,.0f} |" for n, g, w in big),
                "",
            ]
            if big
            else []
        ),
        "## Oracle: every op on a batch against `torchvision.transforms.v2.functional` on each uint8 image",
        "",
        "8 images (noise, low contrast, flat, ramp) × each magnitude, one batched call per op "
        "(tests/test_augmentations_policies.py).",
        "",
        "| op | magnitudes | max abs difference (grey levels) |",
        "|---|---:|---:|",
        *(f"| {op} | {k} | {d:g} |" for op, d, k in oracle),
    ]
    output.write_text("\n".join(lines) + "\n")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
