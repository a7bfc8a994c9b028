"""Batch augmentation specs from the command line, built into one callable for the trainer.

A spec names one augmentation with options, ``cutmix:alpha=1.0,p=0.5``, or a choice of several, one picked
at random per batch (timm's mixup/cutmix switch): ``mixup:alpha=0.2|cutmix``, with optional weights
``mixup:alpha=0.2@0.3|cutmix@0.7`` (default 1 each, normalized). Several specs apply in order. Option values
read as int, float, true/false, none, or else text, and are checked against the builder's signature before
it is called, so a typo names the option and the augmentation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from zoo_core.errors import BadInputError
from zoo_core.spec import bind_options, builder_parameters, parse_call, parse_value

if TYPE_CHECKING:
    import torch

    from zoo_core.catalog import Catalog

Augment = Callable[..., "tuple[torch.Tensor, torch.Tensor]"]

# Options that zoo fills in from the run, not from the command line: the builder receives them only if its
# signature names them.
_FROM_RUN = ("num_classes", "mean", "std")


@dataclass(frozen=True)
class AugCall:
    """One augmentation of a spec: its name, its options, and its weight within a choice."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    weight: float = 1.0
    raw: dict[str, str] = field(default_factory=dict, repr=False, compare=False)  # option texts as typed

    def __str__(self) -> str:
        text = self.name
        if self.raw:
            text += ":" + ",".join(f"{k}={v}" for k, v in self.raw.items())
        return text


def parse_aug_spec(text: str) -> list[AugCall]:
    """Parse one ``--aug`` value into its alternatives (one unless it is a ``|`` choice).

    ``"cutmix:alpha=1.0,p=0.5"`` → ``[AugCall("cutmix", {"alpha": 1.0, "p": 0.5})]``;
    ``"mixup@0.3|cutmix@0.7"`` → two calls with weights 0.3 and 0.7.
    """
    if not text.strip():
        raise BadInputError(
            "Empty augmentation spec: use NAME or NAME:option=value,... (see: zoo list augmentations)"
        )
    return [_parse_call(part, text) for part in text.split("|")]


def _parse_call(part: str, spec: str) -> AugCall:
    body, at, weight_text = part.rpartition("@") if "@" in part else (part, "", "")
    weight = 1.0
    if at:
        weight = parse_value(weight_text)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
            raise BadInputError(
                f"Augmentation spec {spec!r}: weight {weight_text!r} must be a positive number"
            )
    name, options, raw = parse_call(body, spec=spec, what="Augmentation")
    return AugCall(name, options, float(weight), raw)


@dataclass(frozen=True)
class Step:
    """One built augmentation and the call it came from."""

    call: AugCall
    augment: Augment
    soft_targets: bool

    def __call__(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None) -> Any:
        return self.augment(x, y, generator)

    def describe(self) -> str:
        return str(self.call)


def soft_targets(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Integer labels (N,) as one-hot float32 (N, num_classes); soft targets (N, num_classes) pass through.

    Mixing augmentations take both, since an earlier augmentation of the chain may have mixed already.
    """
    import torch.nn.functional as F

    from zoo_core.kit.contracts import target_kind

    if target_kind(y, y.shape[0] if y.ndim else 0, num_classes) == "labels":
        return F.one_hot(y, num_classes).float()
    return y


@dataclass(frozen=True)
class Choice:
    """One of several augmentations per batch, picked at random by weight.

    Every alternative is computed and one result kept, selected on the device: choosing this way never
    waits for the device (no host synchronisation), at the price of running the alternatives that are then
    dropped. When any alternative returns soft targets, all targets are made soft so that they can be
    selected alike.
    """

    steps: tuple[Step, ...]
    num_classes: int

    @property
    def soft_targets(self) -> bool:
        return any(step.soft_targets for step in self.steps)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None) -> Any:
        import torch

        outputs = [step(x, y, generator) for step in self.steps]
        weights = [step.call.weight for step in self.steps]
        u = torch.rand((), device=x.device, generator=generator) * sum(weights)
        # The pick is the number of cumulative weights that u reached: a 0-d tensor on the device.
        bounds = [sum(weights[: k + 1]) for k in range(len(weights) - 1)]
        pick = sum(u >= bound for bound in bounds)
        soft = any(out_y.is_floating_point() for _, out_y in outputs)
        out_x, out_y = outputs[0]
        if soft:
            out_y = soft_targets(out_y, self.num_classes)
        for k, (xk, yk) in enumerate(outputs[1:], start=1):
            chosen = pick == k
            out_x = torch.where(chosen, xk, out_x)
            out_y = torch.where(chosen, soft_targets(yk, self.num_classes) if soft else yk, out_y)
        return out_x, out_y

    def describe(self) -> str:
        return "|".join(f"{step.call}@{step.call.weight:g}" for step in self.steps)


@dataclass(frozen=True)
class AugmentationPipeline:
    """The ``--aug`` specs of a run, built: ``pipeline(x, y, generator=None) -> (x, y)``, applied in order.

    ``soft_targets`` tells whether targets may come out soft (N, num_classes), so the loss must take them.
    """

    stages: tuple[Step | Choice, ...]
    num_classes: int

    @property
    def soft_targets(self) -> bool:
        return any(stage.soft_targets for stage in self.stages)

    @property
    def specs(self) -> list[str]:
        """The specs, normalized, one per stage (what a run's config records)."""
        return [stage.describe() for stage in self.stages]

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        for stage in self.stages:
            x, y = stage(x, y, generator)
        return x, y

    def describe(self) -> str:
        """One line for the log: ``cutmix:alpha=1.0,p=0.5 → mixup@1|cutmix@1``."""
        return " → ".join(self.specs)


def build_augmentations(
    specs: Sequence[str],
    *,
    num_classes: int,
    catalog: Catalog | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> AugmentationPipeline | None:
    """Build the ``--aug`` specs into one pipeline (None when there are none).

    ``mean`` and ``std`` are the data set's normalization, passed to the builders that take them (colour
    jitter works in pixel space). Unknown names raise ``UnknownNameError``; unknown options or bad values
    raise ``BadInputError`` naming the option and the augmentation.
    """
    if not specs:
        return None
    if catalog is None:
        from zoo_core.catalog import get_catalog

        catalog = get_catalog()
    run = {"num_classes": num_classes, "mean": _floats(mean), "std": _floats(std)}
    stages: list[Step | Choice] = []
    for spec in specs:
        steps = tuple(_build_step(call, catalog, run) for call in parse_aug_spec(spec))
        stages.append(steps[0] if len(steps) == 1 else Choice(steps, num_classes))
    return AugmentationPipeline(tuple(stages), num_classes)


def _floats(values: Sequence[float] | None) -> tuple[float, ...] | None:
    return None if values is None else tuple(float(v) for v in values)


def _build_step(call: AugCall, catalog: Catalog, run: dict[str, Any]) -> Step:
    entry = catalog.augmentations.get(call.name)
    level = entry.meta.get("level", "batch")
    if level != "batch":
        batch = [e.name for e in catalog.augmentations.entries() if e.meta.get("level", "batch") == "batch"]
        raise BadInputError(
            f"Augmentation {entry.name!r} is {level}-level (one image at a time); --aug takes batch-level "
            f"augmentations: {', '.join(batch)}"
        )
    builder = entry.load()
    parameters, _ = builder_parameters(builder)
    kwargs = {name: value for name, value in run.items() if name in parameters or name == "num_classes"}
    kwargs |= bind_options(
        f"Augmentation {entry.name!r}",
        builder,
        call.options,
        call.raw,
        reserved=_FROM_RUN,
        reserved_why="set from the data set, not in --aug",
    )
    try:
        augment = builder(**kwargs)
    except ValueError as exc:  # a third-party builder's own check of a value
        raise BadInputError(f"Augmentation {entry.name!r}: {exc}") from exc
    return Step(call, augment, bool(entry.meta.get("soft_targets", False)))
