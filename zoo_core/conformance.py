"""Conformance checks of one plugin's entries against DESIGN.md's builder contracts (``zoo check``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from zoo_core.catalog import Catalog
from zoo_core.errors import BadInputError
from zoo_core.plugins import one_line
from zoo_core.registry import Entry

MODEL_META = ("input_size", "num_classes", "family")
DATASET_META = ("num_classes", "input_size", "splits")
AUGMENTATION_META = ("level", "soft_targets")


@dataclass
class Check:
    entry: str
    check: str
    ok: bool
    detail: str = ""


def _run(entry: Entry, name: str, fn: Callable[[], str | None]) -> Check:
    try:
        return Check(f"{entry.kind} {entry.name}", name, True, fn() or "")
    except Exception as exc:  # a failing check is a result, not a crash
        return Check(f"{entry.kind} {entry.name}", name, False, one_line(exc))


def _has_meta(entry: Entry, keys: tuple[str, ...]) -> str:
    missing = [k for k in keys if k not in entry.meta]
    if missing:
        raise AssertionError(f"missing metadata: {', '.join(missing)}")
    if not entry.summary:
        raise AssertionError("no summary")
    return ""


def _model_forward(entry: Entry) -> str:
    import torch

    c, h, w = entry.meta.get("input_size", (3, 32, 32))
    classes = entry.meta.get("num_classes", 10)
    model = entry.build(num_classes=classes, in_chans=c).eval()
    with torch.no_grad():
        out = model(torch.randn(2, c, h, w))
    if tuple(out.shape) != (2, classes):
        raise AssertionError(f"output shape {tuple(out.shape)}, expected (2, {classes})")
    params = sum(p.numel() for p in model.parameters())
    declared = entry.meta.get("params")
    if declared is not None and declared != params:
        raise AssertionError(f"declared params {declared:,} but the model has {params:,}")
    return f"{params:,} params"


def _augmentation_apply(entry: Entry) -> str:
    import torch

    if entry.meta.get("level") != "batch":
        entry.load()
        return "sample level: loaded"
    aug = entry.build(num_classes=4)
    x, y = torch.randn(5, 3, 16, 16), torch.tensor([0, 1, 2, 3, 0])
    out_x, out_y = aug(x, y, generator=torch.Generator().manual_seed(0))
    if out_x.shape != x.shape:
        raise AssertionError(f"image shape changed to {tuple(out_x.shape)}")
    if out_y.dim() == 2 and not torch.allclose(out_y.sum(1), torch.ones(5), atol=1e-5):
        raise AssertionError("soft targets do not sum to 1")
    again = aug(x, y, generator=torch.Generator().manual_seed(0))[0]
    if not torch.equal(out_x, again):
        raise AssertionError("the same generator seed gave different output")
    return "shape, targets and seeding ok"


def check_plugin(catalog: Catalog, plugin: str) -> Iterator[Check]:
    """Every check of every entry the plugin registered (its load errors first)."""
    known = {info.name: info for info in catalog.plugins}
    if plugin not in known:
        raise BadInputError(f"No plugin {plugin!r} is installed (see: zoo plugins)")
    for error in known[plugin].errors:
        yield Check(f"plugin {plugin}", error.stage, False, error.message)
    for kind, keys in (("model", MODEL_META), ("dataset", DATASET_META), ("augmentation", AUGMENTATION_META)):
        registry = catalog.registry(kind)
        for name in registry.names(plugin=plugin):
            entry = registry.get(name)
            yield _run(entry, "metadata", lambda e=entry, k=keys: _has_meta(e, k))
            yield _run(entry, "builder imports", lambda e=entry: e.load() and "")
            if kind == "model":
                yield _run(entry, "forward", lambda e=entry: _model_forward(e))
            elif kind == "augmentation":
                yield _run(entry, "apply", lambda e=entry: _augmentation_apply(e))
