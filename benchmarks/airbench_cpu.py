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


RUNNER_NAMES = {
    "zoo": "zoo `train cifar10 fastnet`",
    "airbench": "airbench94 (package)",
    "airbench_muon": "airbench94_muon.py",
}


def render(doc: dict) -> str:
    lines = [
        f"# zoo's fastnet beside airbench's own code on the CPU: {doc['cpu']} ({doc['capability']})",
        "",
        f"- Machine: {doc['machine']}",
        f"- Command: `{doc['command']}`",
        f"- airbench {doc['airbench_version']} (`train94`, its published recipe: 9.9 epochs, TTA level 2) "
        f"and airbench94_muon.py ({doc.get('airbench_muon', '—')}: 8 epochs, Muon, TTA level 2), their GPU "
        "calls replaced from outside by benchmarks/airbench_cpu.py (wall clock for CUDA events, fp32 on the "
        "CPU for their fp16, bf16 autocast only on a CPU with native bf16, torch.compile left eager as zoo "
        "runs on a CPU); zoo: `zoo train cifar10 fastnet --data-dir DATA --seed S`, no other option.",
        "- Wall s: airbench94: `train94` + its final TTA evaluation; airbench94_muon: its own clock "
        "(whitening, training steps and the final TTA evaluation, not the per-epoch evaluations it prints); "
        "zoo: the run's `time_s` (training, the evaluations its recipe asks for, a checkpoint after each "
        "epoch, the final TTA evaluation).",
        "- malloc: `system` is glibc's defaults (airbench as published); `zoo` is zoo_core.allocator's "
        "setting (freed blocks kept and reused), which `zoo train` makes on a CPU.",
        "- Load: the 1-minute load average just before and just after each run (2 cores).",
        "",
        "| data | runner | seed | precision | malloc | epochs | top-1 | with TTA | wall s | img/s | load |",
        "|---|---|---:|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in doc["rows"]:
        tta = f"{r['tta_acc']:.2%}" if r.get("tta_acc") is not None else "—"
        load = f"{r['load_before']:.2f} → {r['load_after']:.2f}" if "load_before" in r else "—"
        lines.append(
            f"| {COPIES[r['copy']]} | {r['runner']} | {r['seed']} | {r['precision']} | {malloc(r)} | "
            f"{r['epochs']:g} | {r['acc']:.2%} | {tta} | {r['wall_s']:.0f} | {r['img_per_s']:.0f} | {load} |"
        )
    summary = summarize(doc["rows"])
    if summary:
        lines += ["", "Means:", "", *summary]
    return "\n".join(lines) + "\n"


def summarize(rows: list[dict]) -> list[str]:
    """Per data copy and (runner, malloc): mean and min with TTA, mean wall; then zoo against each."""
    out = []
    for copy in COPIES:
        groups: dict[tuple[str, str], list[dict]] = {}
        for r in rows:
            if r["copy"] == copy:
                groups.setdefault((r["runner"], malloc(r)), []).append(r)
        for (runner, setting), rs in groups.items():
            accs = [r["tta_acc"] for r in rs]
            out.append(
                f"- {COPIES[copy]}, {RUNNER_NAMES.get(runner, runner)}, malloc {setting}: "
                f"{statistics.mean(accs):.2%} mean with TTA over {len(rs)} run(s) (min {min(accs):.2%}), "
                f"wall {statistics.mean(r['wall_s'] for r in rs):.0f} s"
            )
        zoo = groups.get(("zoo", "zoo"))
        for (runner, setting), rs in groups.items():
            if runner == "zoo" or not zoo:
                continue
            z, a = statistics.mean(r["tta_acc"] for r in zoo), statistics.mean(r["tta_acc"] for r in rs)
            zw, aw = statistics.mean(r["wall_s"] for r in zoo), statistics.mean(r["wall_s"] for r in rs)
            out.append(
                f"- {COPIES[copy]}: zoo against {RUNNER_NAMES.get(runner, runner)} (malloc {setting}): "
                f"{(z - a) * 100:+.2f} points with TTA, {zw / aw:.2f}× its wall time"
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("ZOO_DATA", "/tmp/zoo-data")))
    parser.add_argument("--work", type=Path, default=Path("/tmp/airbench-cpu"))
    parser.add_argument("--copies", nargs="+", default=["original"], choices=["original", "jpeg"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument(
        "--runners",
        nargs="+",
        default=["zoo", "airbench", "airbench_muon"],
        choices=list(RUNNER_NAMES),
        help="run in this order for each seed, so the runners alternate",
    )
    parser.add_argument(
        "--airbench-muon",
        type=Path,
        metavar="PATH",
        help="airbench94_muon.py from its own repository (KellerJordan/cifar10-airbench); not copied here",
    )
    parser.add_argument("--zoo-runners-on", nargs="+", default=["original"], help="copies zoo runs on")
    parser.add_argument(
        "--airbench-malloc",
        choices=["system", "zoo"],
        default="system",
        help="airbench's process as published (glibc's malloc defaults) or with zoo's setting "
        "(zoo_core.allocator), to tell zoo's allocator gain from its recipe's cost; zoo always runs as zoo "
        "train does",
    )
    parser.add_argument("--zoo-args", default="", help="extra options for zoo train (ablations)")
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
    if "airbench_muon" in args.runners and not (args.airbench_muon and args.airbench_muon.is_file()):
        sys.exit("--airbench-muon PATH: airbench94_muon.py from github.com/KellerJordan/cifar10-airbench")
    if args.airbench_malloc == "zoo" and not keep_freed_memory():
        sys.exit("--airbench-malloc zoo: glibc's mallopt is not available here")
    capability = cpu_capability()
    precision = choose_precision("auto", probe_hardware("cpu")).precision
    epochs, zoo_extra = None, args.zoo_args.split()
    if args.dry_run:
        args.work = args.work / "dry-run"
        args.data_dir = args.work / "data"
        write_tiny_set(args.data_dir)
        args.copies, args.zoo_runners_on, args.seeds = ["tiny"], ["tiny"], [0]
        epochs, zoo_extra = 1.0, [*zoo_extra, "--epochs", "1"]
    output = args.output or (
        args.work / "report.md" if args.dry_run else RESULTS / f"airbench-cpu-{capability.lower()}.md"
    )
    doc = {
        "cpu": cpu_name(),
        "capability": capability,
        "machine": describe_machine("cpu"),
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "airbench_version": version("airbench"),
        "airbench_muon": muon_source(args.airbench_muon) if args.airbench_muon else None,
        "rows": [],
    }
    for copy in args.copies:
        folder = args.work / copy
        for seed in args.seeds:
            for runner in args.runners:
                if runner == "zoo" and copy not in args.zoo_runners_on:
                    continue
                row = one_run(args, runner, copy, seed, folder, epochs, zoo_extra, precision)
                if row is None:
                    continue
                doc["rows"].append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
                output.parent.mkdir(parents=True, exist_ok=True)
                output.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
                output.write_text(render(doc))
    print(f"wrote {output}", file=sys.stderr)


def one_run(
    args: argparse.Namespace,
    runner: str,
    copy: str,
    seed: int,
    folder: Path,
    epochs: float | None,
    zoo_extra: list[str],
    precision: str,
) -> dict | None:
    """One run's row, from its cache in ``folder`` when it finished before (None with --cached-only)."""
    tuned = runner != "zoo" and args.airbench_malloc == "zoo"
    extra = slug(zoo_extra) if runner == "zoo" else ""
    tag = "-".join(filter(None, [runner, f"seed{seed}", "zoo-malloc" if tuned else "", extra]))
    cache = folder / f"{tag}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    if args.cached_only:
        return None
    load_before = os.getloadavg()[0]
    if runner == "airbench":
        write_airbench_data(folder, args.data_dir, copy)
        row = run_airbench(folder, seed=seed, precision=precision, epochs=epochs)
    elif runner == "airbench_muon":
        write_airbench_data(folder, args.data_dir, copy)
        row = run_airbench_muon(args.airbench_muon, folder, seed=seed, precision=precision)
    else:
        out = folder / f"zoo-seed{seed}{'-' + slug(zoo_extra) if zoo_extra else ''}"
        row = run_zoo(args.data_dir, out, seed=seed, extra=zoo_extra, precision=precision)
        row["zoo_args"] = " ".join(zoo_extra)
    row.update(copy=copy, malloc="zoo" if runner == "zoo" or tuned else "system")
    row.update(load_before=load_before, load_after=os.getloadavg()[0])
    cache.write_text(json.dumps(row, indent=1) + "\n")
    return row


def slug(words: list[str]) -> str:
    """A file-name-safe tag of extra zoo options ("" for none)."""
    return "".join(c if c.isalnum() or c in ".=" else "_" for c in "_".join(words))[:80]


def muon_source(script: Path) -> str:
    """Where airbench94_muon.py came from: its git commit when it sits in a clone, else its path."""
    found = subprocess.run(
        ["git", "-C", str(script.parent), "log", "-1", "--format=%H", "--", script.name],
        capture_output=True,
        text=True,
    )
    commit = found.stdout.strip()
    return f"KellerJordan/cifar10-airbench@{commit[:12]}" if commit else str(script)


if __name__ == "__main__":
    main()
