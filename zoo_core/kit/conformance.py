"""Conformance checks of registered entries against their contracts (``zoo_core.kit.contracts``).

``zoo check PLUGIN`` and ``zoo_core.kit.testing`` run exactly these. Each check exercises an entry the way zoo
uses it — the data set through the loader the Trainer uses, the model through the checkpoint code that
``zoo eval`` and ``zoo predict`` use, the augmentation through the ``--aug`` pipeline — so an entry that
passes them trains. A failing check is a result with its reason, never a crash.
"""

from __future__ import annotations

import copy
import itertools
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from zoo_core.catalog import Catalog
from zoo_core.errors import BadInputError, DataNotFoundError
from zoo_core.kit import contracts
from zoo_core.plugins import one_line
from zoo_core.registry import KINDS, Entry

CLASS_COUNTS = (10, 100)
CHANNELS = (1, 3)
AUG_BATCHES = (1, 7, 8)  # one image, an odd batch, an even one
PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"


@dataclass
class Check:
    """One check of one entry: ``status`` is PASS, FAIL or SKIP; ``detail`` says why (or what passed)."""

    entry: str
    check: str
    status: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status != FAIL

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


class Skip(Exception):
    """A check that cannot run here (no data, no CUDA device): reported as SKIP with this reason."""


def _reason(exc: BaseException) -> str:
    # our own checks' messages stand alone; anything else keeps its type for the plugin author
    if isinstance(exc, AssertionError | contracts.ContractError) and str(exc):
        return " ".join(str(exc).split())
    return one_line(exc)


def run_check(entry: Entry, name: str, fn: Callable[[], str | None]) -> Check:
    """Run one check: its return value is the PASS detail; Skip → SKIP; any other exception → FAIL."""
    label = f"{entry.kind} {entry.name}"
    try:
        return Check(label, name, PASS, fn() or "")
    except Skip as skip:
        return Check(label, name, SKIP, str(skip))
    except Exception as exc:  # a failing check is a result, not a crash
        return Check(label, name, FAIL, _reason(exc))


def _metadata(entry: Entry) -> str:
    missing = contracts.missing_metadata(entry.kind, entry.meta)
    if missing:
        raise AssertionError(f"missing metadata: {', '.join(missing)}")
    if not entry.summary:
        raise AssertionError("no summary (give summary= or a docstring)")
    if entry.kind == "model":
        contracts.model_input_size(entry.meta)
        if not isinstance(entry.meta["num_classes"], int) or entry.meta["num_classes"] < 1:
            raise AssertionError(f"num_classes must be a positive int, got {entry.meta['num_classes']!r}")
    if entry.kind == "augmentation" and contracts.augmentation_level(entry.meta) not in ("batch", "sample"):
        raise AssertionError(f"level must be 'batch' or 'sample', got {entry.meta['level']!r}")
    if entry.kind == "optimizer":
        contracts.optimizer_options(entry.meta, "options")
        if not isinstance(entry.meta.get("matrices_only", False), bool):
            raise AssertionError(f"matrices_only must be True or False, got {entry.meta['matrices_only']!r}")
    return ""


def _imports(entry: Entry) -> str:
    entry.load()
    return entry.target


# -- models -----------------------------------------------------------------------------------------------


class _ModelChecks:
    """The checks of one model, at its declared size and at 10/100 classes × 1/3 channels."""

    def __init__(self, entry: Entry) -> None:
        self.entry = entry
        self._model: Any = None

    def _declared(self) -> tuple[tuple[int, int, int], int]:
        return contracts.model_input_size(self.entry.meta), contracts.model_num_classes(self.entry.meta)

    def build(self, num_classes: int | None = None, in_chans: int | None = None) -> Any:
        size, classes = self._declared()
        return self.entry.build(num_classes=num_classes or classes, in_chans=in_chans or size[0])

    def declared_model(self) -> Any:
        """The model at its declared size, built once and shared by the checks that follow (in eval mode)."""
        if self._model is None:
            self._model = self.build()
        return self._model.eval()

    def batch(self, n: int = 2, channels: int | None = None) -> Any:
        import torch

        c, h, w = self._declared()[0]
        return torch.randn(n, channels or c, h, w, generator=torch.Generator().manual_seed(0))

    def declared(self) -> str:
        import torch

        size, classes = self._declared()
        model = self.declared_model()
        params = contracts.count_params(model)
        problems = []
        declared_params = self.entry.meta.get("params")
        if declared_params is not None and int(declared_params) != params:
            problems.append(f"declared params {int(declared_params):,} but the built model has {params:,}")
        own = contracts.module_input_size(model)
        if own is not None and own != size:
            problems.append(f"declared input_size {size} but the built model states input_size {own}")
        try:
            with torch.no_grad():
                contracts.check_logits(model(self.batch()), 2, classes, "the model")
        except Exception as exc:
            problems.append(f"forward at the declared input_size {size} failed: {_reason(exc)}")
        if problems:
            raise AssertionError("; ".join(problems))
        return f"{params:,} params, input {'×'.join(map(str, size))}, {classes} classes"

    def shapes(self) -> str:
        import torch

        failures = []
        for classes, channels in itertools.product(CLASS_COUNTS, CHANNELS):
            try:
                model = self.build(classes, channels).eval()
                with torch.no_grad():
                    contracts.check_logits(model(self.batch(2, channels)), 2, classes, "the model")
            except Exception as exc:
                failures.append(f"{classes} classes, {channels} channel(s): {_reason(exc)}")
        if failures:
            raise AssertionError("; ".join(failures))
        return "logits (N, classes) at 10/100 classes, 1/3 channels"

    def backward(self) -> str:
        import torch
        import torch.nn.functional as F

        model = self.declared_model().train()
        x = self.batch(4)
        y = torch.arange(4) % self._declared()[1]
        loss = F.cross_entropy(model(x), y)
        if not torch.isfinite(loss):
            raise AssertionError(f"the loss of a random batch is {float(loss)}")
        loss.backward()
        trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if not trainable:
            raise AssertionError("the model has no trainable parameters")
        unused = [n for n, p in trainable if p.grad is None]
        if unused:
            shown = ", ".join(unused[:3]) + (" …" if len(unused) > 3 else "")
            raise AssertionError(
                f"{len(unused)} parameter(s) get no gradient ({shown}): "
                "they never train, and DDP refuses them"
            )
        bad = [n for n, p in trainable if not torch.isfinite(p.grad).all()]
        if bad:
            raise AssertionError(f"non-finite gradients in {', '.join(bad[:3])}")
        model.zero_grad(set_to_none=True)
        return f"loss {float(loss.detach()):.3f}, {len(trainable)} tensors with gradients"

    def channels_last(self) -> str:
        import torch

        model = copy.deepcopy(self.declared_model())
        x = self.batch(2)
        with torch.no_grad():
            expected = model(x)
            model = model.to(memory_format=torch.channels_last)
            got = model(x.contiguous(memory_format=torch.channels_last))
        if not torch.allclose(got, expected, rtol=1e-3, atol=1e-4):
            diff = float((got - expected).abs().max())
            raise AssertionError(f"channels_last changes the logits (max difference {diff:.3g})")
        return "same logits"

    def determinism(self) -> str:
        import torch

        model = self.declared_model()
        x = self.batch(2)
        with torch.no_grad():
            first, second = model(x), model(x)
        if not torch.allclose(first, second, rtol=1e-5, atol=1e-6):
            raise AssertionError("two forwards of the same batch in eval mode differ (dropout left on?)")
        return "same logits twice"

    def round_trip(self) -> str:
        import torch

        from zoo_core.train.checkpoint import load_model, save_weights

        size, classes = self._declared()
        model = self.declared_model()
        x = self.batch(2)
        with torch.no_grad():
            expected = model(x)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.safetensors"
            save_weights(
                path,
                model,
                model_name=self.entry.name,
                model_kwargs={},
                dataset="conformance",
                classes=[str(i) for i in range(classes)],
                mean=(0.5,) * size[0],
                std=(0.25,) * size[0],
                input_size=size,
            )
            loaded, _ = load_model(path)
        with torch.no_grad():
            got = loaded(x)
        if not torch.allclose(got, expected, rtol=1e-5, atol=1e-6):
            raise AssertionError("the model rebuilt from its .safetensors file gives other logits")
        return "save_weights → load_model gives the same logits"


def model_checks(entry: Entry) -> Iterator[Check]:
    yield run_check(entry, "metadata", lambda: _metadata(entry))
    yield run_check(entry, "builder imports", lambda: _imports(entry))
    m = _ModelChecks(entry)
    yield run_check(entry, "declared metadata", m.declared)
    yield run_check(entry, "forward 10/100 classes, 1/3 channels", m.shapes)
    yield run_check(entry, "backward", m.backward)
    yield run_check(entry, "channels_last", m.channels_last)
    yield run_check(entry, "eval determinism", m.determinism)
    yield run_check(entry, "safetensors round trip", m.round_trip)


# -- data sets --------------------------------------------------------------------------------------------


def _declared_dataset(entry: Entry, data: Any) -> list[str]:
    """Disagreements between the registration's metadata and a built split."""
    problems = []
    meta = entry.meta
    classes = len(data.classes)
    if meta.get("num_classes") is not None and int(meta["num_classes"]) != classes:
        problems.append(f"declared num_classes {meta['num_classes']} but the data set has {classes} classes")
    actual = contracts.dataset_input_size(data)  # not from the metadata: that is what is checked
    if contracts.is_in_memory(data):
        images = tuple(int(n) for n in data.images.shape[1:])
        if actual != images:
            problems.append(f"the data set states input_size {actual} but its images are {images}")
    if meta.get("input_size") is not None and tuple(meta["input_size"]) != actual:
        problems.append(f"declared input_size {tuple(meta['input_size'])} but the images are {actual}")
    for key in ("mean", "std"):
        value = getattr(data, key, None) or meta.get(key)
        if value is not None and len(value) != actual[0]:
            problems.append(f"{key} has {len(value)} values for {actual[0]}-channel images")
    return problems


def check_split(entry: Entry, data: Any, split: str) -> str:
    """One built split against the data-set contract and the entry's metadata."""
    where = f"split {split!r}"
    kind = contracts.dataset_kind(data, where)
    classes = len(data.classes)
    if kind == contracts.IN_MEMORY:
        contracts.check_labels(data.labels, classes, where)
        n = len(data.labels)
    else:
        n = len(data)
        for i in sorted({0, n // 2, n - 1}):
            contracts.check_sample(data[i], classes, f"{where}, sample {i}")
        if contracts.decodes_on_device(data, where):
            _check_device_decoding(data, where)
    if hasattr(data, "__len__") and len(data) != n:
        raise AssertionError(f"len() of {where} is {len(data)} but it holds {n} images")
    problems = _declared_dataset(entry, data)
    if problems:
        raise AssertionError("; ".join(problems))
    size = contracts.dataset_input_size(data, entry.meta)
    return f"{kind}, {n:,} images {'×'.join(map(str, size))}, {classes} classes"


def _check_device_decoding(data: Any, where: str) -> None:
    """A streamed split that decodes on the device: ``encoded`` items of its first samples through
    ``decode_batch`` on the CPU give its own images' shape (``contracts.StreamedDataset``)."""
    import torch

    items, shape = [], tuple(data[0][0].shape)
    for i in range(min(2, len(data))):
        item, label = data.encoded(i)
        if not isinstance(item, tuple | list) or len(item) != 2 or not isinstance(item[0], torch.Tensor):
            raise AssertionError(f"{where}: encoded({i}) must give ((tensor, index read), label)")
        if label != data[item[1]][1]:
            raise AssertionError(f"{where}: encoded({i}) gives label {label}, its sample {item[1]}'s is not")
        items.append(tuple(item))
    decoded = data.decode_batch(items, torch.device("cpu"))
    contracts.check_decoded_batch(decoded, len(items), shape, f"{where}: decode_batch")


def check_loader(entry: Entry, data: Any) -> str:
    """The training split through the loader the Trainer uses: one float batch and int64 labels."""
    import torch

    from zoo_core.data.loader import make_loader

    size = contracts.dataset_input_size(data, entry.meta)
    n = len(data.labels) if contracts.is_in_memory(data) else len(data)
    batch = min(8, n)
    options: dict[str, Any] = {"num_workers": 0} if not contracts.is_in_memory(data) else {}
    mean = getattr(data, "mean", None) or entry.meta.get("mean")
    std = getattr(data, "std", None) or entry.meta.get("std")
    loader = make_loader(data, batch_size=batch, device="cpu", train=True, mean=mean, std=std, **options)
    x, y = next(iter(loader))
    if tuple(x.shape) != (batch, *size) or x.dtype != torch.float32:
        raise AssertionError(f"the loader gave {x.dtype} {tuple(x.shape)}, expected float32 {(batch, *size)}")
    contracts.target_kind(y, batch, len(data.classes), "the loader's labels")
    if not torch.isfinite(x).all():
        raise AssertionError("normalized images are not finite (a std of 0?)")
    return f"batch {tuple(x.shape)}, mean/std {'declared' if mean and std else 'computed'}"


def dataset_checks(entry: Entry, root: Path | None = None) -> Iterator[Check]:
    yield run_check(entry, "metadata", lambda: _metadata(entry))
    imported = run_check(entry, "builder imports", lambda: _imports(entry))
    yield imported
    if not imported.ok:
        return
    splits = entry.meta.get("splits") or contracts.SPLITS
    built: dict[str, Any] = {}

    def build(split: str) -> str:
        if split not in splits:
            raise AssertionError(f"declares splits {tuple(splits)}; zoo train needs {contracts.SPLITS}")
        try:
            built[split] = entry.build(root=root, split=split)
        except (BadInputError, DataNotFoundError) as exc:  # the data or the root is missing, not the plugin
            raise Skip(
                f"not built from {root or 'the default data root'}: {' '.join(str(exc).split())}"
            ) from exc
        return check_split(entry, built[split], split)

    for split in contracts.SPLITS:
        yield run_check(entry, f"{split} split", lambda s=split: build(s))

    def same_classes() -> str:
        if len(built) < len(contracts.SPLITS):
            raise Skip("needs both splits")
        train, test = (list(built[s].classes) for s in contracts.SPLITS)
        if train != test:
            raise AssertionError(f"train has classes {train[:4]}… but test has {test[:4]}…")
        return f"{len(train)} classes"

    yield run_check(entry, "same classes in both splits", same_classes)

    def loader() -> str:
        if "train" not in built:
            raise Skip("needs the train split")
        return check_loader(entry, built["train"])

    yield run_check(entry, "loader", loader)


# -- augmentations ----------------------------------------------------------------------------------------


class _AugmentationChecks:
    """The checks of one batch augmentation, built by the ``--aug`` pipeline as ``zoo train`` builds it."""

    num_classes = 10

    def __init__(self, entry: Entry, catalog: Catalog) -> None:
        self.entry, self.catalog = entry, catalog

    def build(self) -> Any:
        from zoo_core.augment import build_augmentations

        return build_augmentations(
            [self.entry.name],
            num_classes=self.num_classes,
            catalog=self.catalog,
            mean=(0.5, 0.5, 0.5),
            std=(0.25, 0.25, 0.25),
        )

    def inputs(self, n: int, soft: bool, device: str = "cpu") -> tuple[Any, Any]:
        import torch

        g = torch.Generator().manual_seed(n)
        x = torch.randn(n, 3, 16, 16, generator=g)
        y = torch.randint(0, self.num_classes, (n,), generator=g)
        if soft:
            y = torch.softmax(torch.randn(n, self.num_classes, generator=g), 1)
        return x.to(device), y.to(device)

    def run(self, aug: Any, n: int, soft: bool, seed: int = 0, device: str = "cpu") -> tuple[Any, Any, str]:
        import torch

        x, y = self.inputs(n, soft, device)
        generator = torch.Generator(device=device).manual_seed(seed)
        where = (
            f"batch of {n}{' with soft targets' if soft else ''}{' on ' + device if device != 'cpu' else ''}"
        )
        return contracts.check_augmented(x, aug(x, y, generator=generator), self.num_classes, where)

    def shapes(self) -> str:
        aug = self.build()
        kinds = set()  # what integer labels come back as
        for n, soft in itertools.product(AUG_BATCHES, (False, True)):
            kind = self.run(aug, n, soft)[2]
            if soft and kind != "soft":
                raise AssertionError(f"soft targets in, {kind} out: a mixed batch must stay soft")
            if not soft:
                kinds.add(kind)
        if "soft" in kinds and not self.entry.meta.get("soft_targets"):
            raise AssertionError("turns labels into soft targets but declares soft_targets=False")
        shown = " or ".join(sorted(kinds))
        return f"batches of {', '.join(map(str, AUG_BATCHES))}; labels come back as {shown}"

    def seeded(self) -> str:
        import torch

        aug = self.build()
        for n in AUG_BATCHES:
            x1, y1, _ = self.run(aug, n, False, seed=n)
            x2, y2, _ = self.run(aug, n, False, seed=n)
            if not (torch.equal(x1, x2) and torch.equal(y1, y2)):
                raise AssertionError(f"the same generator seed gave different output (batch of {n})")
        return "same seed, same output"

    def cuda(self) -> str:
        import torch

        if not torch.cuda.is_available():
            raise Skip("no CUDA device")
        aug = self.build()
        for n in AUG_BATCHES:
            x1, y1, _ = self.run(aug, n, False, seed=1, device="cuda")
            x2, y2, _ = self.run(aug, n, False, seed=1, device="cuda")
            if not (torch.equal(x1, x2) and torch.equal(y1, y2)):
                raise AssertionError(f"on CUDA the same generator seed gave different output (batch of {n})")
        return f"on {torch.cuda.get_device_name()}"

    def sample(self) -> str:
        import torch

        transform = self.entry.build()
        image = torch.randint(
            0, 256, (3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
        )
        out = transform(image)
        if not isinstance(out, torch.Tensor) or out.dim() != 3 or out.shape[0] != 3:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise AssertionError(f"a sample transform must return a C×H×W tensor, got {got}")
        return f"uint8 3×16×16 → {out.dtype} {'×'.join(map(str, out.shape))}"


def augmentation_checks(entry: Entry, catalog: Catalog) -> Iterator[Check]:
    yield run_check(entry, "metadata", lambda: _metadata(entry))
    yield run_check(entry, "builder imports", lambda: _imports(entry))
    a = _AugmentationChecks(entry, catalog)
    if contracts.augmentation_level(entry.meta) != "batch":
        yield run_check(entry, "sample transform", a.sample)
        return
    yield run_check(entry, "shape and targets, batches 1/7/8", a.shapes)
    yield run_check(entry, "seeded repeat", a.seeded)
    yield run_check(entry, "CUDA", a.cuda)


# -- optimizers -------------------------------------------------------------------------------------------


class _OptimizerChecks:
    """The checks of one optimizer, built as ``zoo train`` builds it (``build_optimizer``) over the parameter
    groups zoo makes (weights, then biases) of a tiny regression: a convolution and a linear layer fitting a
    teacher's outputs. A ``matrices_only`` optimizer gets only the weights, as zoo gives it."""

    learning_rates = (
        1e-2,
        1e-1,
        1e-3,
    )  # an optimizer that fits at none of these is broken, whatever its scale
    steps = 20

    def __init__(self, entry: Entry, catalog: Catalog) -> None:
        self.entry, self.catalog = entry, catalog
        self.matrices_only = contracts.matrices_only(entry.meta)

    def problem(self) -> tuple[Any, Any, Any]:
        """(model, inputs, targets), the same every call."""
        import torch
        from torch import nn

        def net(seed: int) -> nn.Module:
            g = torch.Generator().manual_seed(seed)
            model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.Flatten(), nn.Linear(64, 3))
            for p in model.parameters():
                p.data = 0.3 * torch.randn(p.shape, generator=g)
            return model

        x = torch.randn(32, 2, 6, 6, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            target = net(1)(x)
        return net(0), x, target

    def build(self, model: Any, lr: float) -> Any:
        from types import SimpleNamespace

        from zoo_core.train.optim import build_optimizer, param_groups

        groups = param_groups(model, [], lr=lr, weight_decay=1e-4)
        if self.matrices_only:
            groups = [{**g, "params": contracts.split_matrices(g["params"])[0]} for g in groups]
            groups = [g for g in groups if g["params"]]
        run = SimpleNamespace(lr=lr, momentum=None, nesterov=None)  # the builder's own defaults
        optimizer = build_optimizer(self.entry.name, groups, run, self.catalog)
        return contracts.check_optimizer(optimizer, [p for g in groups for p in g["params"]])

    def step(self, model: Any, optimizer: Any, x: Any, target: Any) -> float:
        import torch.nn.functional as F

        optimizer.zero_grad()
        loss = F.mse_loss(model(x), target)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    def options(self) -> str:
        keywords, open_ended = contracts.optimizer_keywords(self.entry.load())
        declared = set(contracts.optimizer_options(self.entry.meta))
        problems = []
        if declared - keywords and not open_ended:
            problems.append(f"options metadata names {', '.join(sorted(declared - keywords))}, not keywords")
        if keywords - declared:
            problems.append(f"keyword(s) {', '.join(sorted(keywords - declared))} missing from its options")
        if problems:
            raise AssertionError("; ".join(problems) + " (zoo info and --optimizer NAME:k=v use them)")
        return f"options: {', '.join(sorted(declared)) or 'none'}"

    def builds(self) -> str:
        model = self.problem()[0]
        optimizer = self.build(model, 1e-2)
        tensors = sum(len(g["params"]) for g in optimizer.param_groups)
        return f"{type(optimizer).__name__}, {tensors} tensors in {len(optimizer.param_groups)} group(s)"

    def fits(self) -> str:
        import math

        tried = []
        for lr in self.learning_rates:
            model, x, target = self.problem()
            optimizer = self.build(model, lr)
            losses = [self.step(model, optimizer, x, target) for _ in range(self.steps)]
            last = losses[-1]
            if all(math.isfinite(v) for v in losses) and last < 0.9 * losses[0]:
                return f"loss {losses[0]:.3g} → {last:.3g} in {self.steps} steps at lr {lr:g}"
            tried.append(f"{losses[0]:.3g} → {last:.3g} at lr {lr:g}")
        raise AssertionError(
            f"the regression loss did not fall by 10% in {self.steps} steps: {'; '.join(tried)}"
        )

    def round_trip(self) -> str:
        import io

        import torch

        model, x, target = self.problem()
        optimizer = self.build(model, 1e-2)
        for _ in range(3):
            self.step(model, optimizer, x, target)
        buffer = io.BytesIO()
        torch.save(optimizer.state_dict(), buffer)
        buffer.seek(0)
        try:
            state = torch.load(buffer, weights_only=True)
        except Exception as exc:  # what torch.load refuses in a checkpoint's last.pt
            raise AssertionError(
                f"its state dict does not load with weights_only=True: {one_line(exc)}"
            ) from exc
        twin = copy.deepcopy(model)
        resumed = self.build(twin, 1e-2)
        resumed.load_state_dict(state)
        self.step(model, optimizer, x, target)
        self.step(twin, resumed, x, target)
        if not all(torch.equal(a, b) for a, b in zip(model.parameters(), twin.parameters(), strict=True)):
            raise AssertionError("a step after load_state_dict differs from the uninterrupted one")
        return "saved, loaded with weights_only=True: the next step is the same"

    def refuses_vectors(self) -> str:
        import torch

        vector = torch.zeros(3, requires_grad=True)
        try:
            self.entry.load()([{"params": [vector], "lr": 1e-2, "weight_decay": 0.0}], lr=1e-2)
        except ValueError:
            return "a 1-D tensor is refused with a ValueError"
        raise AssertionError("declares matrices_only but takes a 1-D tensor without a ValueError")

    def others(self) -> str:
        from zoo_core.train.optim import parse_optimizer_spec

        spec = contracts.others_optimizer(self.entry.meta)
        other = self.catalog.optimizers.get(parse_optimizer_spec(spec)[0])
        if contracts.matrices_only(other.meta):
            raise AssertionError(
                f"others names {other.name!r}, itself matrices_only: biases would find no home"
            )
        return f"biases and norms go to {spec}"


def optimizer_checks(entry: Entry, catalog: Catalog) -> Iterator[Check]:
    yield run_check(entry, "metadata", lambda: _metadata(entry))
    imported = run_check(entry, "builder imports", lambda: _imports(entry))
    yield imported
    if not imported.ok:
        return
    o = _OptimizerChecks(entry, catalog)
    yield run_check(entry, "signature and options", o.options)
    yield run_check(entry, "builds over zoo's parameter groups", o.builds)
    yield run_check(entry, "fits a regression", o.fits)
    yield run_check(entry, "state dict round trip", o.round_trip)
    if o.matrices_only:
        yield run_check(entry, "refuses 1-D tensors", o.refuses_vectors)
        yield run_check(entry, "others", o.others)


# -- whole plugins ----------------------------------------------------------------------------------------


def entry_checks(catalog: Catalog, kind: str, name: str, root: Path | None = None) -> Iterator[Check]:
    """Every check of one registered entry (``name`` of ``kind``)."""
    entry = catalog.registry(kind).get(name)
    if kind == "model":
        yield from model_checks(entry)
    elif kind == "dataset":
        yield from dataset_checks(entry, root)
    elif kind == "optimizer":
        yield from optimizer_checks(entry, catalog)
    else:
        yield from augmentation_checks(entry, catalog)


def check_plugin(catalog: Catalog, plugin: str, root: Path | None = None) -> Iterator[Check]:
    """Every check of every entry the plugin registered (its load errors first)."""
    known = {info.name: info for info in catalog.plugins}
    if plugin not in known:
        raise BadInputError(f"No plugin {plugin!r} is installed (see: zoo plugins)")
    for error in known[plugin].errors:
        yield Check(f"plugin {plugin}", error.stage, FAIL, error.message)
    for kind in KINDS:
        for name in catalog.registry(kind).names(plugin=plugin):
            yield from entry_checks(catalog, kind, name, root)


def format_table(checks: list[Check], *, counts: bool = True) -> str:
    """The checks as an aligned table (status, entry, check, detail), then (``counts``) how many passed."""
    rows = [("result", "entry", "check", "detail")] + [(c.status, c.entry, c.check, c.detail) for c in checks]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        ("  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths, strict=True)) + "  " + row[3]).rstrip()
        for row in rows
    ]
    if counts:
        failed = sum(not c.ok for c in checks)
        skipped = sum(c.status == SKIP for c in checks)
        summary = f"{len(checks) - failed - skipped} passed, {failed} failed"
        lines.append(summary + (f", {skipped} skipped" if skipped else ""))
    return "\n".join(lines)
