"""The same JPEG photos from four sources: zoo's streamed imagefolder, WebDataset shards (zoo's wds), parquet
files (zoo's hf) and torchvision's ImageFolder + DataLoader; and the memory of a process training from the
shards, flat in the number of photos.

    python benchmarks/data_sources.py                        # → results/data-sources-cpu.md (+ .jsonl)
    python benchmarks/data_sources.py --images 4000 --rss 10000 20000 --batches 20   # a shared machine

The photos are benchmarks/imagefolder_stream.py's (JPEGs of 300–500 px, quality 90, 10 classes, written
once into ``--work``); the shards (1,000 photos each, ``KEY.jpg`` + ``KEY.cls``, classes.txt, the shard
index) and the parquet files (1,000 rows each, an Image column of the same bytes and a ClassLabel) hold
the very same JPEG bytes. Every loader reads at 224×224 ImageNet-style, as ``zoo train`` reads large
images: zoo's three store each photo at 256 (224 / 0.875, shorter side, centre square) by zoo's one
decoder, and on a CPU their workers cut the RandomResizedCrop, flip and normalize (float32 batches,
channels_last);
torchvision applies RandomResizedCrop(224), RandomHorizontalFlip, ToTensor and Normalize per image. Same
batch, workers and pinning; the four alternate over ``--rounds`` rounds, each a fresh iterator that skips
``--warmup`` batches and times ``--batches``; the median round counts. Every round is a row of the .jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from imagefolder_stream import CLASSES, make_tree, peak_rss, time_round, torchvision_batches, zoo_batches

RESULTS = Path(__file__).resolve().parent / "results"
PER_FILE = 1000  # photos a shard or parquet file
SOURCES = ("imagefolder", "wds", "hf", "torchvision")


def photo_files(tree: Path) -> list[tuple[Path, int]]:
    """The tree's training photos in index order (their classes interleave: i % CLASSES)."""
    files = sorted((tree / "train").glob("class*/*.jpg"), key=lambda p: p.name)
    return [(p, int(p.parent.name.removeprefix("class"))) for p in files]


def write_shards(tree: Path, folder: Path) -> Path:
    """``folder/train-NNNNNN.tar`` of the tree's JPEG bytes, classes.txt and the shard index, written once."""
    from webdataset import TarWriter

    from zoo_core.data.export_shards import write_shard_index

    if (folder / "train-shards.json").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    files, names, counts = photo_files(tree), [], []
    for k, start in enumerate(range(0, len(files), PER_FILE)):
        names.append(f"train-{k:06d}.tar")
        chunk = files[start : start + PER_FILE]
        with TarWriter(str(folder / names[-1])) as sink:
            for path, label in chunk:
                sink.write({"__key__": path.stem, "jpg": path.read_bytes(), "cls": str(label).encode()})
        counts.append(len(chunk))
    (folder / "classes.txt").write_text("".join(f"class{k}\n" for k in range(CLASSES)))
    write_shard_index(folder, "train", names, counts)
    return folder


def write_parquet(tree: Path, folder: Path) -> Path:
    """``folder/train-NNNNN-of-NNNNN.parquet`` of the tree's JPEG bytes, written once."""
    import datasets

    datasets.disable_progress_bars()
    files = photo_files(tree)
    total = -(-len(files) // PER_FILE)
    if len(list(folder.glob("train-*.parquet"))) == total:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=[f"class{k}" for k in range(CLASSES)])}
    )
    for k, start in enumerate(range(0, len(files), PER_FILE)):
        chunk = files[start : start + PER_FILE]
        rows = {
            "image": [{"bytes": p.read_bytes(), "path": None} for p, _ in chunk],
            "label": [y for _, y in chunk],
        }
        datasets.Dataset.from_dict(rows, features=features).to_parquet(
            str(folder / f"train-{k:05d}-of-{total:05d}.parquet")
        )
    return folder


def zoo_source_batches(data, batch: int, workers: int):
    """An epoch-per-call iterator of zoo's loader over a built streamed data set, as zoo train reads it."""
    import torch

    from zoo_core.data.loader import make_loader
    from zoo_core.device import default_channels_last

    loader = make_loader(
        data, batch_size=batch, device="cpu", train=True, flip=True, resized_crop=True, num_workers=workers,
        channels_last=default_channels_last(torch.device("cpu").type),
    )  # fmt: skip

    def batches():
        loader.set_epoch(loader.epoch + 1)
        return iter(loader)

    return batches


def machine() -> dict:
    """The CPU's model and capability (lscpu's flags, torch's dispatch level), cores, load average."""
    import torch

    from zoo_core.bench.report import cpu_name
    from zoo_core.device import cpu_capability

    try:
        flags = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:  # no lscpu: the capability torch reports still says it
        flags = ""
    found = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f" {f}" in flags]
    return {
        "cpu": cpu_name(),
        "flags": found,
        "capability": cpu_capability(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }


def render(doc: dict) -> str:
    m, t = doc["machine"], doc["throughput"]
    lines = [
        "# The same photos from four sources (cpu)",
        "",
        f"- Machine: {m['cpu']}, {m['cores']} logical cores, {', '.join(m['flags']) or 'no AVX2'} "
        f"(torch's CPU capability: {m['capability']}), torch {m['torch']}; load average "
        f"{', '.join(map(str, m['load_average']))} at the start, {', '.join(map(str, doc['load_after']))} at "
        "the end (a shared machine shows it here; the rounds alternate so that both sides see it alike).",
        f"- Command: `{doc['command']}`",
        f"- {doc['images']:,} JPEG photos (300–500 px, quality 90, {CLASSES} classes), read at "
        f"{doc['size']}×{doc['size']} "
        "ImageNet-style, "
        f"batch {doc['batch']}, {doc['workers']} workers, {doc['rounds']} alternating rounds of "
        f"{doc['batches']} timed batches after {doc['warmup']}. Per-round rows: "
        f"[{doc['rows']}]({doc['rows']}).",
        "",
        "| source | img/s (median) | / torchvision | rounds |",
        "|---|---:|---:|---|",
    ]
    for name in SOURCES:
        if name in t and "torchvision" in t:
            ratio = t[name]["median"] / t["torchvision"]["median"]
            rounds = ", ".join(f"{v:.0f}" for v in t[name]["rounds"])
            lines.append(f"| {name} | {t[name]['median']:.0f} | {ratio:.2f}× | {rounds} |")
    lines += ["", "Goal: wds ≥ 1.5× torchvision."]
    if doc.get("note"):
        lines += ["", f"**Note.** {doc['note']}"]
    if len(doc["rss"]) > 1:
        lines += [
            "",
            f"Peak RSS of a process training {doc['rss_steps']} batches from the shards into a one-layer "
            "model (its own; its workers' largest):",
            "",
            "| photos | process MB | a worker MB |",
            "|---:|---:|---:|",
        ]
        for r in doc["rss"]:
            lines.append(f"| {r['images']:,} | {r['self_kb'] / 1024:.0f} | {r['children_kb'] / 1024:.0f} |")
        sizes = sorted({r["images"] for r in doc["rss"]})

        def median_peak(n: int, key: str) -> float:
            return statistics.median(r[key] for r in doc["rss"] if r["images"] == n)

        small, large = sizes[0], sizes[-1]
        own = median_peak(large, "self_kb") / median_peak(small, "self_kb") - 1
        worker = median_peak(large, "children_kb") / median_peak(small, "children_kb") - 1
        lines += ["", f"{large:,} vs {small:,} photos (the medians of their runs above, in run order): the "
                  f"process's peak is {own:+.1%}, a worker's {worker:+.1%} (goal: flat)."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/zoo-stream-bench"))
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--rss", type=int, nargs="*", default=[10_000, 40_000], help="photo counts")
    parser.add_argument("--rss-steps", type=int, default=40)
    parser.add_argument("--rss-repeats", type=int, default=1, help="runs of each --rss size, in turn")
    parser.add_argument("--output", type=Path, default=RESULTS / "data-sources-cpu.md")
    args = parser.parse_args()

    from zoo_core.allocator import keep_freed_memory
    from zoo_plugins.datasets.hf import hf
    from zoo_plugins.datasets.wds import wds

    keep_freed_memory()  # the process as zoo train runs it on a CPU (torchvision's loader shares it)
    os.environ.setdefault("ZOO_CACHE", str(args.work / "cache"))
    size, batch, workers = args.image_size, args.batch_size, args.workers
    largest = max([args.images, *args.rss])
    full = make_tree(args.work / f"photos-{largest}", largest, workers)

    def tree_of(n: int) -> Path:
        return make_tree(args.work / f"photos-{n}", n, workers, None if n == largest else full)

    tree = tree_of(args.images)
    shards = write_shards(tree, args.work / f"shards-{args.images}")
    parquet = write_parquet(tree, args.work / f"parquet-{args.images}")
    rows = args.output.with_suffix(".jsonl")
    doc = {
        "machine": machine(), "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "images": args.images, "size": size, "batch": batch, "workers": workers, "rounds": args.rounds,
        "warmup": args.warmup, "batches": args.batches, "throughput": {}, "rss_steps": args.rss_steps,
        "rss": [], "rows": rows.name, "load_after": [],
    }  # fmt: skip
    shard_set = wds(root=shards, split="train", image_size=size)
    rows_set = hf(root=parquet, split="train", image_size=size, data_mode="stream")
    mean, std = shard_set.mean, shard_set.std
    loaders = {
        "imagefolder": zoo_batches(tree, size, batch, workers, "cpu", "imagenet"),
        "wds": zoo_source_batches(shard_set, batch, workers),
        "hf": zoo_source_batches(rows_set, batch, workers),
        "torchvision": torchvision_batches(tree, size, batch, workers, "cpu", mean, std, "imagenet"),
    }
    rounds: dict[str, list[float]] = {name: [] for name in loaders}
    with rows.open("w") as sink:
        for r in range(args.rounds):
            for name, batches in loaders.items():
                started = time.time()
                rounds[name].append(time_round(batches, args.warmup, args.batches, "cpu"))
                load = [round(v, 2) for v in os.getloadavg()]
                row = {"round": r + 1, "source": name, "img_per_s": round(rounds[name][-1], 1)}
                row.update(started=started, load_average=load)
                sink.write(json.dumps(row) + "\n")
                sink.flush()
                print(f"round {r + 1} {name}: {rounds[name][-1]:.0f} img/s", file=sys.stderr, flush=True)
            save(doc, rounds, args.output)  # after each round: an interrupted run keeps what it measured
    for _ in range(args.rss_repeats):  # the sizes in turn, again and again: the spread is not the size
        for n in args.rss:
            shards = write_shards(tree_of(n), args.work / f"shards-{n}")
            doc["rss"].append(peak_rss(shards, size, batch, workers, args.rss_steps, dataset="wds"))
            print(f"rss {n:,} photos: {doc['rss'][-1]}", file=sys.stderr, flush=True)
            save(doc, rounds, args.output)
    print(f"wrote {args.output}", file=sys.stderr)


def save(doc: dict, rounds: dict[str, list[float]], output: Path) -> None:
    """The results so far, as .json and .md."""
    doc["throughput"] = {n: {"median": statistics.median(v), "rounds": v} for n, v in rounds.items() if v}
    doc["load_after"] = [round(v, 2) for v in os.getloadavg()]
    output.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    output.write_text(render(doc))


if __name__ == "__main__":
    main()
