"""A streamed ImageFolder of real photos: zoo's loader against torchvision's ImageFolder + DataLoader, and
the training process's memory, flat in the number of images.

    python benchmarks/imagefolder_stream.py                      # → results/imagefolder-stream-<device>.md
    python benchmarks/imagefolder_stream.py --images 2000 --rss 1000 2000 --batches 5   # a quick look

The photos: JPEGs (quality 90) of 300–500 px per side, random crops, rescales and mirrors of the two photos
scikit-learn ships, in 10 class folders, written once into ``--work`` by this script. At ``--image-size``
(224), ImageNet-style as ``zoo train`` reads large images: zoo streams them (``imagefolder(...,
data_mode="stream")`` + ``make_loader``, as zoo train would on the device: workers decode (zoo's one
decoder: torchvision's JPEG decoder and its antialiased resize) to the stored size, shorter side 224 /
0.875 and the centre square; on a CPU the workers cut the RandomResizedCrop of the stored image, flip
and normalize themselves and stack float32 channels_last batches, on a GPU uint8 batches go to the device,
which does all that) against
``torchvision.datasets.ImageFolder`` with ``RandomResizedCrop(224)``, ``RandomHorizontalFlip``,
``ToTensor``, ``Normalize`` and a ``DataLoader`` with the same workers, batch and pinning. Trees smaller
than the largest are hard links to its first photos. The two alternate over ``--rounds`` rounds; each round
starts a fresh iterator, skips ``--warmup`` batches, then times ``--batches``; the median round counts.
Memory: a process that streams ``--steps`` batches into a one-layer model with SGD, for each tree size of
``--rss``; its own peak RSS (``VmHWM``) and its workers' peak (``ru_maxrss`` of its children).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
CLASSES = 10


def write_photos(args: tuple[str, int, int, int]) -> int:
    """Photos ``start``…``stop - 1`` of a tree, each from its own seed (so any slice can be rebuilt)."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    folder, start, stop, seed = args
    sources = [Image.fromarray(a) for a in load_sample_images().images]
    for i in range(start, stop):
        rng = np.random.default_rng([seed, i])
        photo = sources[i % len(sources)]
        scale = rng.uniform(0.8, 1.6)
        big = photo.resize(
            (round(photo.width * scale), round(photo.height * scale)), Image.Resampling.BILINEAR
        )
        w, h = (int(v) for v in rng.integers(300, 501, 2))
        w, h = min(w, big.width), min(h, big.height)
        x, y = int(rng.integers(0, big.width - w + 1)), int(rng.integers(0, big.height - h + 1))
        crop = big.crop((x, y, x + w, y + h))
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        label = i % CLASSES
        path = Path(folder) / "train" / f"class{label}" / f"{i:06d}.jpg"
        crop.save(path, quality=90)
    return stop - start


def make_tree(root: Path, images: int, workers: int, source: Path | None = None) -> Path:
    """``root/train/class<k>/NNNNNN.jpg`` and a small ``test`` split, written once (a marker says done).

    Photo ``i`` is the same in every tree (its own seed), so with ``source``, a finished larger tree, the
    first ``images`` photos are hard links to its files rather than written again."""
    marker = root / f".complete-{images}"
    if marker.is_file():
        return root
    for k in range(CLASSES):
        (root / "train" / f"class{k}").mkdir(parents=True, exist_ok=True)
        (root / "test" / f"class{k}").mkdir(parents=True, exist_ok=True)
    if source is not None:
        for i in range(images):
            name = Path("train") / f"class{i % CLASSES}" / f"{i:06d}.jpg"
            if not (root / name).exists():
                os.link(source / name, root / name)
    else:
        step = 500
        jobs = [(str(root), s, min(s + step, images), 0) for s in range(0, images, step)]
        with ProcessPoolExecutor(workers) as pool:
            done = 0
            for n in pool.map(write_photos, jobs):
                done += n
                print(f"\rwriting {root}: {done:,}/{images:,} photos", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
    for k in range(CLASSES):  # one test photo a class: imagefolder lists classes across splits
        src = root / "train" / f"class{k}" / f"{k:06d}.jpg"
        (root / "test" / f"class{k}" / src.name).write_bytes(src.read_bytes())
    marker.write_text("ok\n")
    return root


# mode → (zoo's imagefolder crop_pct and whether its loader cuts random resized crops, torchvision's first
# transform): "resize" squashes each whole photo to size × size on both sides; "imagenet" is zoo train's
# recipe for large images (stored at size / 0.875, random resized crops) against RandomResizedCrop
MODES = {"resize": (1.0, False, "Resize"), "imagenet": (None, True, "RandomResizedCrop")}


def zoo_batches(
    tree: Path, size: int, batch: int, workers: int, device: str, mode: str, decode: str = "workers"
):
    import torch

    from zoo_core.data.loader import make_loader
    from zoo_core.device import default_channels_last
    from zoo_plugins.datasets.imagefolder import imagefolder

    crop_pct, resized_crop, _ = MODES[mode]
    data = imagefolder(
        root=tree, split="train", image_size=size, data_mode="stream", crop_pct=crop_pct, decode=decode
    )
    loader = make_loader(
        data,
        batch_size=batch,
        device=device,
        train=True,
        flip=True,
        resized_crop=resized_crop,
        num_workers=workers,
        channels_last=default_channels_last(torch.device(device).type),  # the layout zoo train picks there
    )

    def batches():
        loader.set_epoch(loader.epoch + 1)
        return iter(loader)

    return batches


def torchvision_batches(tree: Path, size: int, batch: int, workers: int, device: str, mean, std, mode: str):
    import torch
    from torchvision import datasets, transforms

    first = transforms.Resize((size, size)) if mode == "resize" else transforms.RandomResizedCrop(size)
    transform = transforms.Compose(
        [
            first,
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ]
    )
    data = datasets.ImageFolder(tree / "train", transform=transform)
    loader = torch.utils.data.DataLoader(
        data,
        batch_size=batch,
        shuffle=True,
        num_workers=workers,
        pin_memory=device == "cuda",
        drop_last=True,
        persistent_workers=workers > 0,
    )

    def batches():
        for x, y in loader:
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    return batches


def time_round(batches, warmup: int, timed: int, device: str) -> float:
    import torch

    it = batches()
    for _ in range(warmup):
        next(it)
    if device == "cuda":
        torch.cuda.synchronize()
    start, images = time.perf_counter(), 0
    for _ in range(timed):
        x, _ = next(it)
        images += len(x)
    if device == "cuda":
        torch.cuda.synchronize()
    return images / (time.perf_counter() - start)


RSS_RUN = """
import json, resource, sys
from pathlib import Path
import torch
from zoo_core.allocator import keep_freed_memory
from zoo_core.data.loader import make_loader
from zoo_core import create_dataset

keep_freed_memory()  # as zoo train sets it on a CPU
tree, size, batch, workers, steps = Path(sys.argv[1]), *(int(v) for v in sys.argv[2:6])
name, options = sys.argv[6], json.loads(sys.argv[7])
data = create_dataset(name, root=tree, split="train", image_size=size, **options)
loader = make_loader(data, batch_size=batch, device="cpu", train=True, flip=True, resized_crop=True,
                     num_workers=workers, channels_last=True)  # zoo train's layout on a CPU
model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 8, stride=8), torch.nn.AdaptiveAvgPool2d(1),
                            torch.nn.Flatten(), torch.nn.Linear(8, len(data.classes)))
model = model.to(memory_format=torch.channels_last)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
for step, (x, y) in enumerate(loader):
    loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(); loss.backward(); opt.step()
    if step + 1 == steps:
        break
# this process's own peak: VmHWM starts afresh at exec, where RUSAGE_SELF's maxrss keeps the parent's
# size at the fork that started it (the benchmark's, often larger than this run)
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"images": len(data), "self_kb": hwm,
                  "children_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def peak_rss(
    tree: Path,
    size: int,
    batch: int,
    workers: int,
    steps: int,
    dataset: str = "imagefolder",
    options: dict | None = None,
) -> dict:
    """Peak RSS of a fresh process that streams ``steps`` batches of the data set ``dataset`` at ``tree``
    (built with ``options``; a streamed imagefolder by default) into a one-layer model."""
    options = {"data_mode": "stream"} if options is None and dataset == "imagefolder" else options or {}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            RSS_RUN,
            *map(str, (tree, size, batch, workers, steps)),
            dataset,
            json.dumps(options),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def write(doc: dict, output: Path) -> None:
    output.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    output.write_text(render(doc))


def render(doc: dict) -> str:
    lines = [
        f"# A streamed ImageFolder of photos: zoo against torchvision ({doc['device']})",
        "",
        f"- Machine: {doc['machine']}",
        f"- Command: `{doc['command']}`",
        f"- Tree: {doc['images']:,} JPEG photos (quality 90, 300–500 px a side) in {CLASSES} classes, "
        f"read at {doc['size']}×{doc['size']}; batch {doc['batch']}, {doc['workers']} workers; "
        f"{doc['rounds']} alternating rounds of {doc['batches']} timed batches after {doc['warmup']}.",
        "- zoo: the streamed imagefolder; its workers decode each photo (zoo's one decoder: torchvision's "
        "JPEG decoder, torch's antialiased resize) to the stored size; "
        + (
            "as zoo does on a CPU, the workers also cut (imagenet) the random resized crop, a window of "
            "the stored image resized by torch's uint8 bilinear kernel, draw the flips and normalize, "
            "and stack float32 channels_last batches (zoo train's layout on a CPU): the main process "
            "only receives them. torchvision: "
            if doc["device"] == "cpu"
            else "(imagenet) the random resized crop is cut on the device, a batch at a time, from the "
            "stored image; flip and normalization run on the device too. torchvision: "
        )
        + "ImageFolder + DataLoader with the same workers, batch and pinning, every transform per image in "
        "the workers (the first named below, then RandomHorizontalFlip, ToTensor, Normalize).",
        "",
        "| mode | zoo stores | torchvision's first transform | zoo img/s | torchvision img/s "
        "| zoo / torchvision | rounds (zoo; torchvision) |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for mode, t in doc["throughput"].items():
        stored = "the whole photo at size" if mode == "resize" else "size / 0.875, the centre square"
        lines.append(
            f"| {mode} | {stored} | {MODES[mode][2]} | {t['zoo']:.0f} | {t['torchvision']:.0f} | "
            f"**{t['zoo'] / t['torchvision']:.2f}×** | "
            + ", ".join(f"{v:.0f}" for v in t["zoo_rounds"])
            + "; "
            + ", ".join(f"{v:.0f}" for v in t["torchvision_rounds"])
            + " |"
        )
    for mode, t in doc["throughput"].items():
        if "zoo_device" in t:
            lines.append(
                f"\n{mode}, zoo with the JPEGs decoded on the {doc['device']} (imagefolder decode='device'): "
                f"{t['zoo_device']:.0f} img/s, **{t['zoo_device'] / t['torchvision']:.2f}×** torchvision, "
                f"{t['zoo_device'] / t['zoo']:.2f}× zoo decoding in the workers (rounds "
                + ", ".join(f"{v:.0f}" for v in t["zoo_device_rounds"])
                + ")."
            )
    lines += ["", "Goal: zoo ≥ 1.5× torchvision."]
    if len(doc["rss"]) > 1:
        lines += [
            "",
            f"Peak RSS of a process streaming {doc['rss_steps']} batches into a one-layer model (its own; "
            "its workers' largest):",
            "",
            "| images in the tree | process MB | a worker MB |",
            "|---:|---:|---:|",
        ]
        for r in doc["rss"]:
            lines.append(f"| {r['images']:,} | {r['self_kb'] / 1024:.0f} | {r['children_kb'] / 1024:.0f} |")
        first, last = doc["rss"][0], doc["rss"][-1]
        lines += [
            "",
            f"{last['images']:,} vs {first['images']:,} images: the process's peak is "
            f"{last['self_kb'] / first['self_kb'] - 1:+.1%} (goal: within 10%).",
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/zoo-stream-bench"))
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument(
        "--decode-on-device",
        action="store_true",
        help="also time zoo with imagefolder's decode='device' (the JPEGs decoded a batch at a time on the "
        "device: nvJPEG on a GPU)",
    )
    parser.add_argument("--rss", type=int, nargs="*", default=[10_000, 40_000], help="tree sizes")
    parser.add_argument("--rss-steps", type=int, default=40)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()

    from zoo_core.allocator import keep_freed_memory
    from zoo_core.bench import describe_machine

    if args.device == "cpu":  # the process as zoo train runs it on a CPU (torchvision's loader shares it)
        keep_freed_memory()

    os.environ.setdefault("ZOO_CACHE", str(args.work / "cache"))
    output = args.output or RESULTS / f"imagefolder-stream-{args.device}.md"
    size, batch, workers = args.image_size, args.batch_size, args.workers
    largest = max([args.images, *args.rss])  # written once; the smaller trees link to its photos
    full = make_tree(args.work / f"photos-{largest}", largest, workers)

    def tree_of(n: int) -> Path:
        return make_tree(args.work / f"photos-{n}", n, workers, None if n == largest else full)

    tree = tree_of(args.images)
    from zoo_plugins.datasets.imagefolder import imagefolder

    stats = imagefolder(root=tree, split="train", image_size=size, data_mode="stream")
    doc = {
        "device": args.device,
        "machine": describe_machine(args.device),
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "images": args.images,
        "size": size,
        "batch": batch,
        "workers": workers,
        "rounds": args.rounds,
        "warmup": args.warmup,
        "batches": args.batches,
        "throughput": {},
        "rss_steps": args.rss_steps,
        "rss": [],
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    for mode in args.modes:  # each result written as soon as it is measured
        loaders = {
            "zoo": zoo_batches(tree, size, batch, workers, args.device, mode),
            "torchvision": torchvision_batches(
                tree, size, batch, workers, args.device, stats.mean, stats.std, mode
            ),
        }
        if args.decode_on_device:
            loaders["zoo_device"] = zoo_batches(tree, size, batch, workers, args.device, mode, "device")
        rounds: dict[str, list[float]] = {name: [] for name in loaders}
        for r in range(args.rounds):
            for name, batches in loaders.items():
                rounds[name].append(time_round(batches, args.warmup, args.batches, args.device))
                print(
                    f"{mode} round {r + 1} {name}: {rounds[name][-1]:.0f} img/s", file=sys.stderr, flush=True
                )
        doc["throughput"][mode] = {
            **{name: statistics.median(values) for name, values in rounds.items()},
            **{f"{name}_rounds": values for name, values in rounds.items()},
        }
        write(doc, output)
    for n in args.rss:
        doc["rss"].append(peak_rss(tree_of(n), size, batch, workers, args.rss_steps))
        print(f"rss {n:,} images: {doc['rss'][-1]}", file=sys.stderr, flush=True)
        write(doc, output)
    print(f"wrote {output}", file=sys.stderr)


if __name__ == "__main__":
    main()
