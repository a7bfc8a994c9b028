"""Accuracy benchmarks: train each selected model with zoo's own Trainer on a data set, evaluate it on the
test split, and record how good it got and how fast — one row per model.

The training is ``zoo train`` itself (the data set's recipe, ``epochs`` and ``batch_size`` overriding it),
observed through a Trainer callback: every epoch's test accuracy and wall time give the curve, the time to
reach each target accuracy and the final top-1/top-5. A model that fails or diverges gets an ``error``
and the sweep goes on; a CUDA out-of-memory error retries the model at half the batch.
"""

from __future__ import annotations

import contextlib
import gc
import io
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from zoo_core.bench.throughput import resolve_precision, select_models
from zoo_core.catalog import get_catalog
from zoo_core.errors import BadInputError, ZooError
from zoo_core.out_of_memory import OutOfMemory
from zoo_core.plugins import one_line
from zoo_core.progress import Phase

DEFAULT_TARGETS = (0.9, 0.94, 0.99)


class BenchInterrupted(ZooError):
    """Ctrl-C during an accuracy sweep: the rows finished so far stand, the sweep stops."""

    exit_code = 130


class _EpochRecorder:
    """A Trainer callback that keeps every epoch's metrics."""

    def __init__(self, on_epoch: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.metrics: list[dict[str, Any]] = []
        self.on_epoch = on_epoch

    def on_epoch_end(self, trainer: Any, metrics: dict[str, Any]) -> None:
        self.metrics.append(dict(metrics))
        if self.on_epoch is not None:
            self.on_epoch(metrics)


def time_to_targets(curve: list[dict[str, float]], targets: Iterable[float]) -> dict[str, float | None]:
    """For each target accuracy, the ``time_s`` of the first epoch whose score reached it (else None): its
    ``tta_acc`` where it has one (the recipe's final evaluation, on the last epoch), else its ``val_acc``.
    Keyed by ``str(target)`` so the mapping survives JSON."""
    scores = [(point["time_s"], point.get("tta_acc", point["val_acc"])) for point in curve]
    return {
        str(target): next(
            (seconds for seconds, score in scores if score is not None and score >= target), None
        )
        for target in targets
    }


def _harmonic_mean(values: list[float]) -> float | None:
    # epochs of equal size: total images / total seconds is the harmonic mean of the per-epoch rates
    values = [v for v in values if v and v > 0]
    return len(values) / sum(1 / v for v in values) if values else None


@contextlib.contextmanager
def _run_directory(root: Path | None, dataset: str, model: str) -> Iterator[Path]:
    """A fresh run directory: under ``root`` (kept) or in a temporary folder (deleted afterwards)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{dataset}-{model}")
    if root is None:
        with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
            yield Path(tmp) / name
        return
    path, n = Path(root) / name, 1
    while path.exists():  # a Trainer appends to an existing metrics.jsonl: never reuse a directory
        n += 1
        path = Path(root) / f"{name}-{n}"
    yield path


def benchmark_accuracy(
    name: str,
    *,
    device: str,
    dataset: str | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    precision: str | None = None,  # None: the recipe's
    channels_last: bool | None = None,
    compile: bool = False,
    seed: int = 0,
    data_dir: str | Path | None = None,
    targets: Iterable[float] = DEFAULT_TARGETS,
    runs_dir: Path | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train one registered model and evaluate it; returns a row whose ``error`` is None on success.

    ``dataset`` None: the model's ``default_dataset``. ``epochs``/``batch_size`` None: the recipe's.
    Fields: ``top1``/``top5`` (fractions, the last epoch's test accuracy), ``tta``/``tta_top1`` (the
    recipe's test-time augmentation and the last epoch's top-1 with it; None without one), ``train_s``
    (the last epoch's ``time_s``: wall seconds of training, evaluations included), ``wall_s`` (data
    loading and building too), ``img_per_s`` (training), ``time_to`` (target → seconds or None),
    ``curve`` (per epoch: ``epoch``, ``time_s``, ``val_acc``, ``val_acc5``, ``train_loss``, and
    ``tta_acc`` on the epoch that has one).
    """
    from zoo_core.train.config import TrainConfig
    from zoo_core.train.trainer import Trainer, TrainingInterrupted

    targets = tuple(targets)
    row: dict[str, Any] = {
        "mode": "accuracy",
        "model": name,
        "dataset": dataset,
        "device": device,
        "precision": precision,
        "epochs": epochs,
        "batch_size": batch_size,
        "params": None,
        "top1": None,
        "top5": None,
        "tta": None,
        "tta_top1": None,
        "train_s": None,
        "wall_s": None,
        "img_per_s": None,
        "time_to": dict.fromkeys(map(str, targets)),
        "curve": [],
        "oom_retries": 0,
        "run_dir": None,
        "error": None,
    }
    started = time.perf_counter()
    recorder = _EpochRecorder(on_epoch)
    try:
        catalog = get_catalog()
        entry = catalog.models.get(name)
        row["model"] = entry.name
        dataset = dataset or entry.meta.get("default_dataset")
        if not dataset:
            raise BadInputError(f"{entry.name} declares no default_dataset: name one with --dataset")
        row["dataset"] = dataset = catalog.datasets.get(dataset).name
        while True:
            recorder.metrics.clear()
            resolved = None
            with _run_directory(runs_dir, dataset, entry.name) as run_dir:
                try:
                    cfg = TrainConfig(
                        dataset=dataset,
                        model=entry.name,
                        epochs=epochs,
                        batch_size=batch_size,
                        device=device,
                        precision=precision,
                        channels_last=channels_last,
                        compile=compile,
                        seed=seed,
                        data_dir=str(data_dir) if data_dir is not None else None,
                        tensorboard=False,
                    )
                    trainer = Trainer(cfg, run_dir, callbacks=[recorder])
                    resolved = trainer.cfg
                    row["epochs"], row["batch_size"] = resolved.epochs, resolved.batch_size
                    row["precision"] = resolve_precision(resolved.precision, str(trainer.device))
                    row["params"] = sum(p.numel() for p in trainer.model.parameters())
                    row["run_dir"] = str(run_dir) if runs_dir is not None else None
                    trainer.fit()
                    break
                except (OutOfMemory, torch.cuda.OutOfMemoryError):  # the Trainer's one line, or raw
                    if resolved is None or resolved.batch_size <= 1:
                        raise
                # retried outside the except block, so the failed run's tensors can be freed first
                trainer = None
                gc.collect()
                torch.cuda.empty_cache()
                batch_size = resolved.batch_size // 2
                row["oom_retries"] += 1
    except (TrainingInterrupted, KeyboardInterrupt):
        raise
    except Exception as exc:
        row["error"] = one_line(exc)
    finally:
        trainer = None
        row["wall_s"] = time.perf_counter() - started
        if str(device).startswith("cuda") and torch.cuda.is_available():
            torch.cuda.empty_cache()
    metrics = recorder.metrics
    row["curve"] = [
        {k: m[k] for k in ("epoch", "time_s", "val_acc", "val_acc5", "train_loss", "tta_acc") if k in m}
        for m in metrics
    ]
    row["time_to"] = time_to_targets(row["curve"], targets)
    row["img_per_s"] = _harmonic_mean([m.get("img_per_s") for m in metrics])
    if metrics and row["error"] is None:
        row["top1"], row["top5"] = metrics[-1]["val_acc"], metrics[-1]["val_acc5"]
        row["train_s"] = metrics[-1]["time_s"]
        if "tta_acc" in metrics[-1]:  # the recipe's final score over augmented views (top1 stays plain)
            row["tta"], row["tta_top1"] = metrics[-1]["tta"], metrics[-1]["tta_acc"]
    return row


class _AboveBar(io.TextIOBase):
    """A stderr stand-in that prints whole lines above a tqdm bar instead of through it."""

    def __init__(self, stream: Any) -> None:
        self.stream, self.pending = stream, ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            tqdm.write(line, file=self.stream)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def run_accuracy(
    patterns: Iterable[str] = (),
    *,
    device: str,
    dataset: str | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    precision: str | None = None,  # None: the recipe's
    channels_last: bool | None = None,
    compile: bool = False,
    seed: int = 0,
    data_dir: str | Path | None = None,
    targets: Iterable[float] = DEFAULT_TARGETS,
    runs_dir: Path | None = None,
    progress: bool = True,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Train and evaluate every model matching ``patterns`` (see ``select_models``); one row per model.
    Bad settings (an unknown data set, epochs < 1, a target outside (0, 1]) fail before any training."""
    targets = tuple(targets)
    if dataset is not None:
        dataset = get_catalog().datasets.get(dataset).name
    if epochs is not None and epochs < 1:
        raise BadInputError(f"--epochs must be at least 1, not {epochs}")
    if batch_size is not None and batch_size < 1:
        raise BadInputError(f"--batch-size must be at least 1, not {batch_size}")
    for target in targets:
        if not 0 < target <= 1:
            raise BadInputError(f"--target {target} must be an accuracy in (0, 1]")
    names = select_models(patterns)
    rows: list[dict[str, Any]] = []
    stderr = sys.stderr
    with Phase("bench --accuracy", total=len(names), unit="model", enabled=progress) as bar:
        for name in names:
            bar.note(name)

            def on_epoch(metrics: dict[str, Any], name: str = name) -> None:
                bar.note(f"{name} epoch {metrics['epoch']} top-1 {metrics['val_acc']:.2%}")

            # the Trainer's per-epoch lines go above the bar rather than through it
            redirect = contextlib.redirect_stderr(_AboveBar(stderr)) if progress else contextlib.nullcontext()
            try:
                with redirect:
                    row = benchmark_accuracy(
                        name,
                        device=device,
                        dataset=dataset,
                        epochs=epochs,
                        batch_size=batch_size,
                        precision=precision,
                        channels_last=channels_last,
                        compile=compile,
                        seed=seed,
                        data_dir=data_dir,
                        targets=targets,
                        runs_dir=runs_dir,
                        on_epoch=on_epoch,
                    )
            except (ZooError, KeyboardInterrupt) as exc:
                if isinstance(exc, ZooError) and exc.exit_code < 128:  # 128 + N: stopped by signal N
                    raise
                raise BenchInterrupted(
                    f"Interrupted while training {name}; {len(rows)} of {len(names)} models finished"
                ) from None
            rows.append(row)
            bar.update(1)
            if on_row is not None:
                on_row(row)
    return rows
