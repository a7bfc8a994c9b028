"""airbench94's own code beside `zoo train cifar10 fastnet`, on the CPU, same machine, same pixels.

    pip install airbench==0.1.8                      # the published package; its code is imported, not copied
    python benchmarks/airbench_cpu.py --data-dir DATA --work /tmp/airbench [--copies original jpeg] \
        [--seeds 0] [--runners airbench zoo] [--cached-only] [--output benchmarks/results/airbench-cpu-….md]
    python benchmarks/airbench_cpu.py --dry-run      # a few steps of each on a tiny synthetic set

airbench 0.1.8 is GPU-only; this driver replaces its GPU calls from outside and changes nothing else:
``torch.cuda.Event``/``synchronize`` become a wall clock, its ``CifarLoader`` reads the same ``train.pt``/
``test.pt`` onto the CPU in fp32 (its fp16 is emulated on most CPUs), and ``make_net94`` runs with
``.half()``/``.cuda()`` as no-ops, under bf16 autocast only where zoo's ``--precision auto`` would pick bf16
(a CPU with native bf16). The recipe is the published ``train94`` (9.9 epochs, TTA level 2), seeded with
``torch.manual_seed``. Its wall time is ``train94`` (whitening init and training) plus the final TTA
evaluation; zoo's is the run's own ``time_s``, which also holds an evaluation and the checkpoint writes
after every epoch.

DATA holds ``cifar-10-batches-py/`` (the original pixels) and, for ``--copies jpeg``, ``cifar10-jpeg/``
(``python ../shared/data/prepare.py DATA --jpeg``). Finished runs are picked up from ``--work``: a zoo run
killed half-way resumes exactly (``zoo train --resume``); an airbench run starts again.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import math
import os
import pickle
import statistics
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
COPIES = {
    "original": "CIFAR-10, original pixels",
    "jpeg": "CIFAR-10 (JPEG q75 copy)",
    "tiny": "a tiny synthetic set (dry run)",
}


# -- the data, in airbench's format -------------------------------------------------------------------


def load_split(data_dir: Path, copy: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 N×3×32×32 images and int64 labels, read by zoo's own CIFAR-10 readers."""
    from zoo_plugins.datasets.cifar10 import cifar10, read_tree

    if copy == "jpeg":
        data = read_tree(data_dir / "cifar10-jpeg", split)
    else:
        data = cifar10(root=data_dir, split=split, format="pickle")
    return data.images, data.labels


def write_airbench_data(folder: Path, data_dir: Path, copy: str) -> None:
    """``folder/cifar10/{train,test}.pt`` as airbench's CifarLoader reads them: N×32×32×3 uint8 (HWC)."""
    target = folder / "cifar10"
    if (target / "test.pt").is_file():
        return
    target.mkdir(parents=True, exist_ok=True)
    for split, name in (("train", "train.pt"), ("test", "test.pt")):
        images, labels = load_split(data_dir, copy, split)
        payload = {"images": images.permute(0, 2, 3, 1).contiguous(), "labels": labels, "classes": CLASSES}
        torch.save(payload, target / f".{name}.tmp")
        os.replace(target / f".{name}.tmp", target / name)


def write_tiny_set(data_dir: Path, *, train: int = 2048, test: int = 512) -> None:
    """Random images in CIFAR-10's official pickle layout, for the dry run."""
    import numpy as np

    folder = data_dir / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = [(f"data_batch_{i}", train // 5) for i in range(1, 6)] + [("test_batch", test)]
    for name, n in names:
        batch = {
            b"batch_label": name.encode(),
            b"labels": rng.integers(0, 10, n).tolist(),
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"filenames": [f"{i}.png".encode() for i in range(n)],
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"label_names": [c.encode() for c in CLASSES], b"num_cases_per_batch": train // 5}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))


# -- airbench on the CPU ------------------------------------------------------------------------------


class WallClockEvent:
    """Stands in for torch.cuda.Event(enable_timing=True): record() notes the time, elapsed_time() in ms."""

    def __init__(self, enable_timing: bool = True) -> None:
        self.at = 0.0

    def record(self, stream: object = None) -> None:
        self.at = time.perf_counter()

    def elapsed_time(self, end: WallClockEvent) -> float:
        return (end.at - self.at) * 1e3


@contextlib.contextmanager
def patched(obj: object, name: str, value: object) -> Iterator[None]:
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def cpu_loader_class(airbench_utils: object) -> type:
    """airbench's CifarLoader, on the CPU in fp32: the same file, order and augmentation code."""
    base = airbench_utils.CifarLoader

    class CpuCifarLoader(base):
        def __init__(self, path: str, train: bool = True, **kwargs: object) -> None:
            super().__init__(path, train=train, **{**kwargs, "gpu": "cpu"})
            data = torch.load(os.path.join(path, "train.pt" if train else "test.pt"))
            images = data["images"].float() / 255  # airbench's own expression, in fp32 not fp16
            self.images = images.permute(0, 3, 1, 2).to(memory_format=torch.channels_last)

    return CpuCifarLoader


def run_airbench(folder: Path, *, seed: int, precision: str, epochs: float | None) -> dict:
    """One airbench94 run in ``folder`` (which holds cifar10/{train,test}.pt): accuracy and seconds."""
    import airbench
    import airbench.lib_airbench94 as ab94
    import airbench.utils as abu

    dtype = torch.bfloat16 if precision == "bf16" else None

    class Autocast(nn.Sequential):  # the published net under autocast, indexable as train() expects
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                return super().forward(x).float()

    def make_net() -> nn.Module:
        with patched(nn.Module, "half", lambda self: self), patched(nn.Module, "cuda", lambda self: self):
            net = ab94.make_net94()
        net.__class__ = Autocast
        return net

    loader_class = cpu_loader_class(abu)
    hyp = ab94.hyp
    cwd = os.getcwd()
    os.chdir(folder)  # train() reads its test set from the relative path "cifar10"
    try:
        with (
            patched(torch.cuda, "Event", WallClockEvent),
            patched(torch.cuda, "synchronize", lambda *a, **k: None),
            patched(abu, "CifarLoader", loader_class),
        ):
            torch.manual_seed(seed)
            train_loader = loader_class(
                "cifar10", train=True, batch_size=hyp["opt"]["batch_size"], aug=hyp["aug"], altflip=True
            )
            test_loader = loader_class("cifar10", train=False, batch_size=2000)
            train_epochs = hyp["opt"]["train_epochs"] if epochs is None else epochs
            start = time.perf_counter()
            model = airbench.train94(train_loader, epochs=train_epochs, make_net=make_net, verbose=False)
            train_s = time.perf_counter() - start
            start = time.perf_counter()
            tta_acc = abu.evaluate(model, test_loader, tta_level=hyp["net"]["tta_level"])
            tta_s = time.perf_counter() - start
            acc = abu.evaluate(model, test_loader, tta_level=0)
    finally:
        os.chdir(cwd)
    steps = math.ceil(len(train_loader) * train_epochs)  # as train() counts them
    return {
        "runner": "airbench",
        "seed": seed,
        "precision": precision,
        "epochs": train_epochs,
        "acc": acc,
        "tta_acc": tta_acc,
        "train_s": train_s,
        "wall_s": train_s + tta_s,
        "img_per_s": steps * train_loader.batch_size / train_s,
    }


def load_airbench_muon(script: Path) -> types.ModuleType:
    """airbench94_muon.py as a module, its ``__main__`` block not run: its ``@torch.compile`` stays eager
    (zoo does not compile on a CPU either), everything else as published."""
    spec = importlib.util.spec_from_file_location("airbench94_muon", script)
    if spec is None or spec.loader is None:
        sys.exit(f"--airbench-muon: {script} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    eager = lambda fn=None, **_: fn if fn is not None else (lambda f: f)  # noqa: E731
    # it reads its own source through sys.argv[0], to log it
    with patched(sys, "argv", [str(script)]), patched(torch, "compile", eager):
        spec.loader.exec_module(module)
    return module


def run_airbench_muon(script: Path, folder: Path, *, seed: int, precision: str) -> dict:
    """One run of airbench94_muon.py's ``main`` in ``folder`` (which holds cifar10/{train,test}.pt)."""
    module = load_airbench_muon(script)
    dtype = torch.bfloat16 if precision == "bf16" else None

    class CpuCifarLoader(module.CifarLoader):  # its loader, on the CPU in fp32 (its fp16 is emulated here)
        def __init__(self, path: str, train: bool = True, **kwargs: object) -> None:
            with patched(torch, "load", lambda f, **kw: torch_load(f, **{**kw, "map_location": "cpu"})):
                super().__init__(path, train=train, **kwargs)
            data = torch.load(os.path.join(path, "train.pt" if train else "test.pt"))
            images = data["images"].float() / 255
            self.images = images.permute(0, 3, 1, 2).to(memory_format=torch.channels_last)

    class Autocast(module.CifarNet):  # the published net, under bf16 autocast where zoo would use it
        def forward(self, x: torch.Tensor, whiten_bias_grad: bool = True) -> torch.Tensor:
            with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
                return super().forward(x, whiten_bias_grad=whiten_bias_grad).float()

    with patched(nn.Module, "half", lambda self: self):
        model = Autocast().to(memory_format=torch.channels_last)
    printed = io.StringIO()
    cwd = os.getcwd()
    os.chdir(folder)  # main() reads the relative path "cifar10"
    try:
        with (
            patched(torch.cuda, "Event", WallClockEvent),
            patched(torch.cuda, "synchronize", lambda *a, **k: None),
            patched(module, "CifarLoader", CpuCifarLoader),
            contextlib.redirect_stdout(printed),
        ):
            torch.manual_seed(seed)
            start = time.perf_counter()
            tta_acc = module.main(seed, model)
            outer_s = time.perf_counter() - start
            test_loader = CpuCifarLoader("cifar10", train=False, batch_size=2000)
            acc = module.evaluate(model, test_loader, tta_level=0)
    finally:
        os.chdir(cwd)
    # its own clock, printed in the table's last row: whitening, the 8 epochs' steps and the TTA evaluation
    # (not the per-epoch evaluations it prints between them)
    own_s = float(printed.getvalue().strip().splitlines()[-2].split("|")[-2])
    return {
        "runner": "airbench_muon",
        "seed": seed,
        "precision": precision,
        "epochs": 8,
        "acc": acc,
        "tta_acc": tta_acc,
        "train_s": own_s,
        "wall_s": own_s,
        "outer_s": outer_s,
        "img_per_s": 8 * 25 * 2000 / own_s,
    }


torch_load = torch.load


# -- zoo ----------------------------------------------------------------------------------------------


def run_zoo(data_dir: Path, out: Path, *, seed: int, extra: list[str], precision: str) -> dict:
    """`zoo train cifar10 fastnet --data-dir DATA --seed S` (resumed when a killed run left last.pt)."""
    metrics_file = out / "metrics.jsonl"
    config_file = out / "config.json"
    done = False
    if metrics_file.is_file() and config_file.is_file():
        epochs = json.loads(config_file.read_text())["epochs"]
        done = len(metrics_file.read_text().splitlines()) >= epochs
    if not done:
        zoo = [sys.executable, "-m", "zoo_core", "train"]
        if (out / "last.pt").is_file():
            command = [*zoo, "--resume", str(out)]
        else:
            command = [*zoo, "cifar10", "fastnet", "--data-dir", str(data_dir), "--seed", str(seed)]
            command += ["--out", str(out), "--no-tensorboard", *extra]
        print("$ " + " ".join(command[1:]), file=sys.stderr, flush=True)
        subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    lines = [json.loads(line) for line in metrics_file.read_text().splitlines()]
    last, config = lines[-1], json.loads(config_file.read_text())
    return {
        "runner": "zoo",
        "seed": seed,
        # what `auto` chose: metrics.jsonl says it; ``precision`` is the same choice on this machine
        "precision": last.get("precision")
        or (precision if config["precision"] == "auto" else config["precision"]),
        "epochs": last["epoch"],
        "acc": last["val_acc"],
        "tta_acc": last.get("tta_acc"),
        "wall_s": last["time_s"],
        "img_per_s": statistics.median(m["img_per_s"] for m in lines),
    }


# -- the report ---------------------------------------------------------------------------------------


def malloc(row: dict) -> str:
    """The row's allocator setting; rows written before the option existed ran glibc's defaults."""
    return row.get("malloc", "system")


def render(doc: dict) -> str:
    lines = [
        f"# airbench94 beside zoo's fastnet on the CPU: {doc['cpu']} ({doc['capability']})",
        "",
        f"- Machine: {doc['machine']}",
        f"- Command: `{doc['command']}`",
        f"- airbench {doc['airbench_version']} (`train94`, its published recipe: 9.9 epochs, TTA level 2), "
        "its GPU calls replaced from outside by benchmarks/airbench_cpu.py (wall clock for CUDA events, fp32 "
        "on the CPU for its fp16, bf16 autocast only on a CPU with native bf16); zoo: "
        "`zoo train cifar10 fastnet --data-dir DATA --seed S`, no other option.",
        "- Wall s: airbench: `train94` + its final TTA evaluation; zoo: the run's `time_s` (its training, an "
        "evaluation and three checkpoint writes after each epoch, and the final TTA evaluation).",
        "- malloc: `system` is glibc's defaults (airbench as published); `zoo` is zoo_core.allocator's "
        "setting (freed blocks kept and reused), which `zoo train` makes on a CPU. Rows from before the "
        "setting existed say `system` for both runners.",
        "",
        "| data | runner | seed | precision | malloc | epochs | top-1 | with TTA | wall s | img/s |",
        "|---|---|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in doc["rows"]:
        tta = f"{r['tta_acc']:.2%}" if r.get("tta_acc") is not None else "—"
        lines.append(
            f"| {COPIES[r['copy']]} | {r['runner']} | {r['seed']} | {r['precision']} | {malloc(r)} | "
            f"{r['epochs']:g} | {r['acc']:.2%} | {tta} | {r['wall_s']:.0f} | {r['img_per_s']:.0f} |"
        )
    summary = []
    for copy in COPIES:
        by = {  # airbench as published against zoo as zoo train runs
            runner: [
                r
                for r in doc["rows"]
                if r["copy"] == copy and r["runner"] == runner and (runner == "zoo" or malloc(r) == "system")
            ]
            for runner in ("airbench", "zoo")
        }
        if by["airbench"] and by["zoo"]:
            a = statistics.mean(r["tta_acc"] for r in by["airbench"])
            z = statistics.mean(r["tta_acc"] for r in by["zoo"])
            aw = statistics.mean(r["wall_s"] for r in by["airbench"])
            zw = statistics.mean(r["wall_s"] for r in by["zoo"])
            summary.append(
                f"- {COPIES[copy]}: zoo {z:.2%} vs airbench {a:.2%} with TTA ({(z - a) * 100:+.2f} points); "
                f"wall {zw:.0f} s vs {aw:.0f} s ({zw / aw:.2f}×)."
            )
        tuned = [
            r for r in doc["rows"] if r["copy"] == copy and r["runner"] == "airbench" and malloc(r) == "zoo"
        ]
        if tuned and by["zoo"]:
            a = statistics.mean(r["tta_acc"] for r in tuned)
            aw = statistics.mean(r["wall_s"] for r in tuned)
            zw = statistics.mean(r["wall_s"] for r in by["zoo"])
            summary.append(
                f"- {COPIES[copy]}, airbench with zoo's malloc setting too: {a:.2%} with TTA, wall "
                f"{aw:.0f} s: zoo's {zw:.0f} s is {zw / aw:.2f}× it (the recipes' own costs, the "
                "allocator set alike)."
            )
    if summary:
        lines += ["", "Means:", "", *summary]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("ZOO_DATA", "/tmp/zoo-data")))
    parser.add_argument("--work", type=Path, default=Path("/tmp/airbench-cpu"))
    parser.add_argument("--copies", nargs="+", default=["original"], choices=["original", "jpeg"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--runners", nargs="+", default=["airbench", "zoo"], choices=["airbench", "zoo"])
    parser.add_argument("--zoo-runners-on", nargs="+", default=["original"], help="copies zoo runs on")
    parser.add_argument(
        "--airbench-malloc",
        choices=["system", "zoo"],
        default="system",
        help="airbench's process as published (glibc's malloc defaults) or with zoo's setting "
        "(zoo_core.allocator), to tell zoo's allocator gain from its recipe's cost; zoo always runs as zoo "
        "train does",
    )
    parser.add_argument("--cached-only", action="store_true", help="report finished runs; start none")
    parser.add_argument("--dry-run", action="store_true", help="a few steps of each on a tiny set")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()

    from importlib.metadata import PackageNotFoundError, version

    from zoo_core.allocator import keep_freed_memory
    from zoo_core.bench import describe_machine
    from zoo_core.bench.report import cpu_name
    from zoo_core.device import choose_precision, cpu_capability, probe_hardware

    try:
        version("airbench")
    except PackageNotFoundError:
        sys.exit("airbench is not installed: pip install airbench==0.1.8 (or pip install -e '.[anchors]')")
    capability = cpu_capability()
    precision = choose_precision("auto", probe_hardware("cpu")).precision
    epochs, zoo_extra = None, []
    if args.dry_run:
        args.work = args.work / "dry-run"
        args.data_dir = args.work / "data"
        write_tiny_set(args.data_dir)
        args.copies, args.zoo_runners_on, args.seeds = ["tiny"], ["tiny"], [0]
        epochs, zoo_extra = 1.0, ["--epochs", "1"]
    output = args.output or (
        args.work / "report.md" if args.dry_run else RESULTS / f"airbench-cpu-{capability.lower()}.md"
    )
    doc = {
        "cpu": cpu_name(),
        "capability": capability,
        "machine": describe_machine("cpu"),
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "airbench_version": version("airbench"),
        "rows": [],
    }
    for copy in args.copies:
        folder = args.work / copy
        for seed in args.seeds:
            for runner in args.runners:
                if runner == "zoo" and copy not in args.zoo_runners_on:
                    continue
                tuned = runner == "airbench" and args.airbench_malloc == "zoo"
                cache = folder / f"{runner}-seed{seed}{'-zoo-malloc' if tuned else ''}.json"
                if cache.is_file():
                    row = json.loads(cache.read_text())
                elif args.cached_only:
                    continue
                else:
                    if runner == "airbench":
                        if tuned and not keep_freed_memory():
                            sys.exit("--airbench-malloc zoo: glibc's mallopt is not available here")
                        write_airbench_data(folder, args.data_dir, copy)
                        row = run_airbench(folder, seed=seed, precision=precision, epochs=epochs)
                    else:
                        out = folder / f"zoo-seed{seed}"
                        row = run_zoo(args.data_dir, out, seed=seed, extra=zoo_extra, precision=precision)
                    row["copy"] = copy
                    row["malloc"] = "zoo" if runner == "zoo" or tuned else "system"
                    cache.write_text(json.dumps(row, indent=1) + "\n")
                doc["rows"].append(row)
                other = folder / f"{runner}-seed{seed}{'' if tuned else '-zoo-malloc'}.json"
                if runner == "airbench" and other.is_file():  # the other malloc setting, measured before
                    doc["rows"].append(json.loads(other.read_text()))
                print(json.dumps(row), file=sys.stderr, flush=True)
                output.parent.mkdir(parents=True, exist_ok=True)
                output.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
                output.write_text(render(doc))
    print(f"wrote {output}", file=sys.stderr)


if __name__ == "__main__":
    main()
