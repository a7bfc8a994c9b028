"""The Trainer against a minimal hand-written loop: same model, data, batch size, optimizer, on-device data.

Both train N epochs and evaluate on the test split after each; the ratio of wall times is the Trainer's
overhead (goal ≤ 1.03). Median of several alternating runs. Example:

    python benchmarks/trainer_overhead.py --dataset mnist --data-dir /tmp/zoo-data --epochs 2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import zoo_core
from zoo_core.bench import describe_machine
from zoo_core.data.loader import DeviceLoader
from zoo_core.train.config import TrainConfig
from zoo_core.train.trainer import Trainer


def config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        dataset=args.dataset,
        model=args.model,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=0.05,
        optimizer="sgd",
        momentum=0.9,
        nesterov=True,
        weight_decay=5e-4,
        label_smoothing=0.0,
        schedule="constant",
        crop_padding=0,
        flip=False,
        device=args.device,
        precision="fp32",
        data_dir=args.data_dir,
        tensorboard=False,
        seed=0,
    )


def run_trainer(args: argparse.Namespace) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config(args), Path(tmp) / "run")
        start = time.perf_counter()
        trainer.fit()
        return time.perf_counter() - start


def run_hand_loop(args: argparse.Namespace) -> float:
    """What a careful person writes by hand: data on the device, a plain loop, evaluation each epoch."""
    device = torch.device(args.device)
    train = zoo_core.create_dataset(args.dataset, root=args.data_dir, split="train")
    test = zoo_core.create_dataset(args.dataset, root=args.data_dir, split="test")
    entry = zoo_core.get_catalog().datasets.get(args.dataset)
    mean, std = train.mean or entry.meta["mean"], train.std or entry.meta["std"]
    torch.manual_seed(0)
    model = zoo_core.create_model(args.model, num_classes=len(train.classes), in_chans=train.images.shape[1])
    model = model.to(device)
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1]
    optimizer = torch.optim.SGD(
        [{"params": decay, "weight_decay": 5e-4}, {"params": rest, "weight_decay": 0}],
        lr=0.05,
        momentum=0.9,
        nesterov=True,
    )
    train_loader = DeviceLoader(
        train.images, train.labels, batch_size=args.batch_size, device=device, mean=mean, std=std, train=True
    )
    test_loader = DeviceLoader(
        test.images,
        test.labels,
        batch_size=max(args.batch_size, 256),
        device=device,
        mean=mean,
        std=std,
        train=False,
    )
    start = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        train_loader.set_epoch(epoch)
        for x, y in train_loader:
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        correct = torch.zeros((), device=device)
        with torch.no_grad():
            for x, y in test_loader:
                correct += (model(x).argmax(1) == y).sum()
        print(f"  hand loop epoch {epoch + 1}: val_acc {correct.item() / len(test.labels):.4f}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--model", default="lenet")
    parser.add_argument("--data-dir")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    run_hand_loop(args)  # warm-up: page cache, allocator, kernels
    hand, ours = [], []
    for _ in range(args.repeats):  # alternate so that drifts in machine speed hit both alike
        hand.append(run_hand_loop(args))
        ours.append(run_trainer(args))
    ratio = statistics.median(ours) / statistics.median(hand)
    text = (
        f"# Trainer overhead ({args.device})\n\n"
        f"Machine: {describe_machine(args.device)}; {time.strftime('%Y-%m-%d')}.\n"
        f"{args.model} on {args.dataset}, {args.epochs} epochs + evaluation each epoch, "
        f"batch {args.batch_size}, "
        f"SGD, fp32, data on the device; median of {args.repeats} alternating runs after one warm-up.\n\n"
        "| loop | median s | runs s |\n|---|---|---|\n"
        f"| hand-written | {statistics.median(hand):.2f} | {', '.join(f'{t:.2f}' for t in hand)} |\n"
        f"| zoo Trainer | {statistics.median(ours):.2f} | {', '.join(f'{t:.2f}' for t in ours)} |\n\n"
        f"Ratio Trainer / hand-written: **{ratio:.3f}** (goal ≤ 1.03).\n"
    )
    print(text)
    if args.output:
        args.output.write_text(text)


if __name__ == "__main__":
    main()
