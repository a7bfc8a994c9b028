"""Conformance checks for plugin authors' own tests: the very checks ``zoo check`` runs.

.. code-block:: python

    # tests/test_conformance.py of a plugin
    from zoo_core.kit.testing import check_plugin, train_smoke

    def test_every_entry_honours_its_contract():
        check_plugin("foo")  # raises ConformanceError listing each failed check and why

    def test_it_trains():
        metrics = train_smoke("foodata", "foonet", augs=["foomix"])
        assert metrics["val_acc"] >= 0

Each ``check_*`` returns its ``Check`` rows (PASS, SKIP) and raises ``ConformanceError`` (an
``AssertionError``, so pytest shows it as a failure) with the table of failed checks if any failed.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from zoo_core.catalog import get_catalog
from zoo_core.kit import contracts
from zoo_core.kit.conformance import Check, entry_checks, format_table
from zoo_core.kit.conformance import check_plugin as _plugin_checks
from zoo_core.registry import Entry

__all__ = [
    "Check",
    "ConformanceError",
    "check_augmentation",
    "check_dataset",
    "check_model",
    "check_optimizer",
    "check_plugin",
    "train_smoke",
]


class ConformanceError(AssertionError):
    """One or more conformance checks failed; the message is the table of the failed ones."""

    def __init__(self, checks: list[Check]) -> None:
        self.checks = checks
        failed = [c for c in checks if not c.ok]
        table = format_table(failed, counts=False)
        super().__init__(f"{len(failed)} of {len(checks)} conformance checks failed:\n{table}")


def _raise_on_failure(checks: list[Check]) -> list[Check]:
    if any(not c.ok for c in checks):
        raise ConformanceError(checks)
    return checks


def check_model(name: str) -> list[Check]:
    """A registered model: metadata, builder import, declared ``params`` and ``input_size`` against the built
    module, logits at 10/100 classes and 1/3 channels, backward, channels_last, eval determinism, and a
    safetensors round trip through the code ``zoo eval`` uses."""
    return _raise_on_failure(list(entry_checks(get_catalog(), "model", name)))


def check_dataset(name: str, root: str | Path | None = None) -> list[Check]:
    """A registered data set, both splits built from ``root`` (default: ``$ZOO_DATA`` or ``~/.cache/zoo``):
    the contract's dtypes and shapes, label range, declared metadata, the same classes in both splits, and
    one batch through the Trainer's loader. A split whose files are missing is skipped, not failed."""
    root = Path(root) if root is not None else None
    return _raise_on_failure(list(entry_checks(get_catalog(), "dataset", name, root)))


def check_augmentation(name: str) -> list[Check]:
    """A registered augmentation, built as ``--aug`` builds it: shape kept, targets of the contract (soft
    ones summing to 1, only where ``soft_targets`` is declared), batches of 1, 7 and 8, the same output for
    the same seed, and the same on CUDA when a device is there."""
    return _raise_on_failure(list(entry_checks(get_catalog(), "augmentation", name)))


def check_optimizer(name: str) -> list[Check]:
    """A registered optimizer, built as ``--optimizer`` builds it over zoo's parameter groups of a tiny
    regression: signature ``(param_groups, *, lr, **options)`` with every option in its ``options`` metadata,
    the loss falls within 20 steps, the state dict survives ``torch.save``/``torch.load(weights_only=True)``
    with the next step unchanged; a ``matrices_only`` one refuses 1-D tensors and names ``others`` that
    take them."""
    return _raise_on_failure(list(entry_checks(get_catalog(), "optimizer", name)))


def check_plugin(name: str, root: str | Path | None = None) -> list[Check]:
    """Every entry of an installed plugin (its entry-point name, e.g. ``"foo"``), and its load errors."""
    root = Path(root) if root is not None else None
    return _raise_on_failure(list(_plugin_checks(get_catalog(), name, root)))


# -- one real epoch ---------------------------------------------------------------------------------------


class _InMemorySlice:
    """A few images of an in-memory data set, exactly the in-memory contract and nothing more."""

    def __init__(self, data: Any, index: Any) -> None:
        self.classes = list(data.classes)
        self.images = data.images[index]
        self.labels = data.labels[index]
        for key in ("mean", "std"):
            if getattr(data, key, None) is not None:
                setattr(self, key, getattr(data, key))

    def __len__(self) -> int:
        return len(self.labels)


class _StreamSlice:
    """A few samples of a streamed data set (map-style: ``__len__`` and ``__getitem__``)."""

    def __init__(self, data: Any, index: list[int]) -> None:
        self.data, self.index = data, index
        self.classes = list(data.classes)
        for key in ("mean", "std", "input_size"):
            if getattr(data, key, None) is not None:
                setattr(self, key, getattr(data, key))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> Any:
        return self.data[self.index[i]]


def _slice(data: Any, samples: int, seed: int) -> Any:
    import torch

    n = len(data.labels) if contracts.is_in_memory(data) else len(data)
    index = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[: min(samples, n)]
    if contracts.dataset_kind(data) == contracts.IN_MEMORY:
        return _InMemorySlice(data, index)
    return _StreamSlice(data, index.tolist())


@contextmanager
def _sliced(name: str, samples: int) -> Iterator[Entry]:
    """While inside, the catalog's data set ``name`` builds only ``samples`` images per split (half for the
    test split), under its own name, so recipes and checkpoints see the real data set."""
    registry = get_catalog().datasets
    original = registry.get(name)

    def build(**kwargs: Any) -> Any:
        count = samples if kwargs.get("split") == "train" else max(1, samples // 2)
        return _slice(original.build(**kwargs), count, seed=0)

    sliced = Entry(
        original.name,
        original.kind,
        build,
        original.summary,
        original.aliases,
        original.plugin,
        original.meta,
    )
    # The one place zoo swaps a registered entry: the registry has no public way to, on purpose.
    registry._entries[original.name] = sliced
    try:
        yield sliced
    finally:
        registry._entries[original.name] = original


def train_smoke(
    dataset: str,
    model: str,
    augs: Sequence[str] = (),
    *,
    root: str | Path | None = None,
    samples: int = 64,
    batch_size: int = 16,
    device: str = "cpu",
    run_dir: str | Path | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Train ``model`` on ``samples`` images of ``dataset`` (and evaluate on half as many test images) for
    one real epoch of zoo's Trainer with the ``--aug`` specs ``augs``; returns the epoch's metrics.

    Raises ``AssertionError`` if the loss is not finite or the saved weights do not load back. ``options``
    are further ``TrainConfig`` fields (``lr=…``, ``dataset_kwargs={…}``). The run directory is a temporary
    one unless ``run_dir`` is given.
    """
    from zoo_core.train.checkpoint import FINAL_WEIGHTS, load_model
    from zoo_core.train.config import TrainConfig
    from zoo_core.train.trainer import Trainer

    cfg = TrainConfig(
        dataset=dataset,
        model=model,
        augs=list(augs),
        epochs=1,
        batch_size=min(batch_size, samples),
        device=device,
        precision="fp32",
        data_dir=str(root) if root is not None else None,
        tensorboard=False,
        log_every=1,
        **options,
    )
    with _sliced(dataset, samples), tempfile.TemporaryDirectory(prefix="zoo-smoke-") as tmp:
        out = Path(run_dir) if run_dir is not None else Path(tmp) / "run"
        trainer = Trainer(cfg, out)
        metrics = trainer.fit()
        if not math.isfinite(metrics["train_loss"]) or not math.isfinite(metrics["val_loss"]):
            raise AssertionError(f"one epoch of {model} on {dataset} gave a non-finite loss: {metrics}")
        load_model(out / FINAL_WEIGHTS)  # what zoo eval and zoo predict do with the run
    return metrics
