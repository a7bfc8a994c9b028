"""The optimizer with its parameter groups, and the learning-rate schedule.

Parameter groups come from the run's ``param_groups``: a list of ``{"params": PATTERN, ...}`` that a recipe
(or ``--param-group``) sets without naming a model in code. ``PATTERN`` is a shell-style pattern over
``model.named_parameters()`` names; the first group that matches a parameter takes it. Keys:

- ``lr_scale``: the group's learning rate is ``lr × lr_scale`` (the schedule scales it like the others);
- ``weight_decay_scale``: its weight decay is ``weight_decay × weight_decay_scale`` (applied whatever the
  tensor's shape; unmatched parameters keep zoo's default: no decay on biases and norms);
- ``epochs``: the group trains for its first N epochs only, then its learning rate is held at 0;
- ``optimizer``: a spec (``"muon:momentum=0.6"``) of the registered optimizer that trains this group; the
  groups without one, and the parameters no group matches, take the run's ``--optimizer``.

Frozen parameters (``requires_grad=False``) are never handed to the optimizer. An optimizer that takes only
weights of two or more dimensions (``matrices_only``, e.g. Muon) hands a group's other tensors (biases,
norms) to the optimizer its registration names as ``others``, with the group's settings. Groups that name
different optimizers are stepped as one ``OptimizerSet``.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from zoo_core.errors import BadInputError
from zoo_core.kit import contracts

if TYPE_CHECKING:  # torch is imported by the functions that use it: TrainConfig validates specs without it
    import torch
    from torch import nn

GROUP_KEYS = {"params", "lr_scale", "weight_decay_scale", "epochs", "optimizer"}
NUMERIC_KEYS = ("lr_scale", "weight_decay_scale", "epochs")
SCHEDULE_OPTIONS = {"linear": {"warmup": 0.2, "start": 0.0, "end": 0.0}}


def check_param_groups(groups: Sequence[dict[str, Any]]) -> None:
    """Raise BadInputError for a group spec that is not a dict with a pattern and known numeric keys."""
    for group in groups:
        if not isinstance(group, dict) or not isinstance(group.get("params"), str):
            raise BadInputError(f"a parameter group needs a 'params' pattern: {group!r}")
        unknown = set(group) - GROUP_KEYS
        if unknown:
            raise BadInputError(
                f"parameter group {group['params']!r}: unknown key(s) {', '.join(sorted(unknown))} "
                f"(known: {', '.join(sorted(GROUP_KEYS - {'params'}))})"
            )
        if not isinstance(group.get("optimizer", ""), str):
            raise BadInputError(
                f"parameter group {group['params']!r}: optimizer must be a spec (NAME:k=v,...)"
            )
        if group.get("optimizer"):
            parse_optimizer_spec(group["optimizer"])
        for key in NUMERIC_KEYS:
            value = group.get(key, 1)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise BadInputError(f"parameter group {group['params']!r}: {key} must be a number ≥ 0")


def param_groups(
    model: nn.Module, specs: Sequence[dict[str, Any]], *, lr: float, weight_decay: float
) -> list[dict[str, Any]]:
    """The optimizer's groups: one per spec (in order), then decay / no-decay for the rest."""
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    taken: set[str] = set()
    groups = []
    for spec in specs:
        matched = [
            (name, p) for name, p in named if name not in taken and fnmatch.fnmatchcase(name, spec["params"])
        ]
        if not matched:
            raise BadInputError(
                f"parameter group {spec['params']!r} matches no trainable parameter of the model "
                f"(names look like {named[0][0] if named else '-'!r})"
            )
        taken.update(name for name, _ in matched)
        group = {
            "params": [p for _, p in matched],
            "lr": lr * spec.get("lr_scale", 1.0),
            "weight_decay": weight_decay * spec.get("weight_decay_scale", 1.0),
            "pattern": spec["params"],
        }
        if "epochs" in spec:
            group["train_epochs"] = int(spec["epochs"])
        if spec.get("optimizer"):
            group["optimizer"] = spec["optimizer"]
        groups.append(group)
    rest = [(name, p) for name, p in named if name not in taken]
    # no weight decay on norm layers and biases: it only fights their scale, a common, well-tested choice
    decay = [p for _, p in rest if p.ndim > 1]
    no_decay = [p for _, p in rest if p.ndim <= 1]
    groups += [
        {"params": decay, "lr": lr, "weight_decay": weight_decay},
        {"params": no_decay, "lr": lr, "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def parse_optimizer_spec(text: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    """``"muon:ns_steps=3,normalize=true"`` → ``("muon", {"ns_steps": 3, "normalize": True}, texts)``."""
    from zoo_core.spec import parse_call

    return parse_call(text, spec=text, what="Optimizer")


def make_optimizer(model: nn.Module, cfg: Any, catalog: Any = None) -> torch.optim.Optimizer:
    """The run's optimizer over ``param_groups(model, cfg.param_groups, ...)``: one registered optimizer,
    or an ``OptimizerSet`` when groups name others."""
    from zoo_core.catalog import get_catalog

    catalog = catalog or get_catalog()
    groups = param_groups(model, cfg.param_groups or [], lr=cfg.lr, weight_decay=cfg.weight_decay)
    by_spec: dict[str, list[dict[str, Any]]] = {}
    last: dict[str, int] = {}  # where each optimizer's last group stands among the run's groups
    for i, group in enumerate(groups):
        spec = group.pop("optimizer", None) or cfg.optimizer
        entry = catalog.optimizers.get(parse_optimizer_spec(spec)[0])
        parts = {spec: group["params"]}
        if contracts.matrices_only(entry.meta):
            matrices, rest = contracts.split_matrices(group["params"])
            parts = {spec: matrices}
            parts.setdefault(contracts.others_optimizer(entry.meta), []).extend(rest)
        for part_spec, params in parts.items():
            if params:
                by_spec.setdefault(part_spec, []).append({**group, "params": params})
                last[part_spec] = i
    # the run's own optimizer last: its last group (the parameters no spec matched) is the run's lr
    order = sorted(by_spec, key=last.__getitem__)
    optimizers = [build_optimizer(spec, by_spec[spec], cfg, catalog) for spec in order]
    if len(optimizers) == 1:
        return optimizers[0]
    from zoo_core.train.optimizer_set import OptimizerSet

    return OptimizerSet(optimizers)


def check_optimizer_specs(cfg: Any, catalog: Any) -> None:
    """Every optimizer spec of the run (its own, its parameter groups', and the ``others`` of a
    matrices-only one) names a registered optimizer whose builder takes its options: checked at set-up,
    before minutes of data loading, by what ``build_optimizer`` binds (the same one-line messages)."""
    groups = cfg.param_groups or []
    specs = [cfg.optimizer, *(g.get("optimizer") for g in groups if isinstance(g, dict))]
    seen: set[str] = set()
    while specs:
        spec = specs.pop(0)
        if not spec or spec in seen:
            continue
        seen.add(spec)
        entry, _, _ = bound_spec(spec, catalog)
        if contracts.matrices_only(entry.meta):
            specs.append(contracts.others_optimizer(entry.meta))


def bound_spec(spec: str, catalog: Any) -> tuple[Any, Any, dict[str, Any]]:
    """(registry entry, builder, the spec's options bound to the builder's keywords) of an optimizer spec;
    a spec that does not bind is bad input, in one line."""
    from zoo_core.spec import bind_options

    name, options, raw = parse_optimizer_spec(spec)
    entry = catalog.optimizers.get(name)
    builder = entry.load()
    kwargs = bind_options(
        f"Optimizer {entry.name!r}",
        builder,
        options,
        raw,
        reserved=contracts.OPTIMIZER_RESERVED,
        reserved_why="set by zoo",
    )
    return entry, builder, kwargs


def build_optimizer(spec: str, groups: list[dict[str, Any]], cfg: Any, catalog: Any) -> torch.optim.Optimizer:
    """One registered optimizer over ``groups``: the spec's options, and the run's ``momentum`` and
    ``nesterov`` where the builder takes them and the spec does not set them."""
    from zoo_core.spec import builder_parameters

    entry, builder, options = bound_spec(spec, catalog)
    label = f"Optimizer {entry.name!r}"
    parameters, _ = builder_parameters(builder)
    run = {key: getattr(cfg, key, None) for key in contracts.OPTIMIZER_FROM_RUN}
    kwargs = {k: v for k, v in run.items() if k in parameters and v is not None} | options
    try:
        optimizer = builder(groups, lr=cfg.lr, **kwargs)
    except ValueError as exc:  # the builder's or torch's own check of a value
        patterns = ", ".join(sorted({g["pattern"] for g in groups if "pattern" in g}))
        where = f" (parameter group {patterns})" if patterns else ""
        raise BadInputError(f"{label}{where}: {exc}") from exc
    return contracts.check_optimizer(optimizer, [p for g in groups for p in g["params"]], label)


def parse_schedule(spec: str) -> tuple[str, dict[str, float]]:
    """``"linear:warmup=0.23,start=0.2,end=0.07"`` → ``("linear", {...})`` with defaults filled in."""
    name, _, rest = spec.partition(":")
    options = dict(SCHEDULE_OPTIONS.get(name, {}))
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep or key not in options:
            known = ", ".join(options) or "none"
            raise BadInputError(f"--schedule {spec}: unknown option {key!r} for {name} (options: {known})")
        try:
            options[key] = float(value)
        except ValueError:
            raise BadInputError(f"--schedule {spec}: {key} must be a number, not {value!r}") from None
    return name, options


def linear_factor(step: int, total: int, warmup: float, start: float, end: float) -> float:
    """Piecewise linear: ``start`` → 1 over the first ``warmup`` fraction of steps, then 1 → ``end``."""
    warm = int(total * warmup)
    if step < warm:
        return start + (1.0 - start) * step / warm
    return 1.0 + (end - 1.0) * min(1.0, (step - warm) / max(1, total - warm))


def make_schedule(optimizer: torch.optim.Optimizer, schedule: str, total_steps: int) -> Any:
    """Stepped once per optimizer step; every group follows it from its own base learning rate."""
    import torch

    name, options = parse_schedule(schedule)
    base = [group["lr"] for group in optimizer.param_groups]
    if name == "onecycle" and total_steps >= 3:
        # torch's OneCycleLR divides by the length of each phase: keep the warm-up at least two steps long
        pct_start = max(0.25, 2 / total_steps)
        # momentum cycles against the rate where every group has one (not across Muon and AdamW groups)
        cycle = "momentum" in optimizer.defaults or "betas" in optimizer.defaults
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=base, total_steps=total_steps, pct_start=pct_start, cycle_momentum=cycle
        )
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    if name == "step":  # ÷10 at half and at three quarters of the run
        milestones = [total_steps // 2, total_steps * 3 // 4]
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    if name == "linear":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: linear_factor(step, total_steps, **options)
        )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


def hold_finished_groups(optimizer: torch.optim.Optimizer, epoch: int) -> None:
    """Learning rate 0 for the groups whose ``epochs`` have passed (after each schedule step: schedules
    recompute the rate from their own state, so this holds however they work)."""
    for group in optimizer.param_groups:
        if epoch >= group.get("train_epochs", math.inf):
            group["lr"] = 0.0


def freeze_finished_groups(optimizer: torch.optim.Optimizer, epoch: int) -> None:
    """Stop computing gradients for the parameters of groups whose ``epochs`` have passed.

    Their learning rate is already 0 (``hold_finished_groups``), so they no longer change; without their
    gradients the backward pass can also stop earlier: fastnet's whitening bias (3 epochs) is all that
    needs the gradient below its first conv group, so epochs 4–10 skip that group's input gradient and the
    stem's backward (fastnet on an AMX CPU: ~1,210 → ~1,340 img/s from epoch 4). The other gradients are
    the same quantities; a kernel that no longer computes the input gradient may round the weight gradient
    differently (bf16: a different last bit, a run within its seed noise). Not under DDP, whose reducer
    expects the gradients it registered at construction."""
    for group in optimizer.param_groups:
        if epoch >= group.get("train_epochs", math.inf):
            for param in group["params"]:
                param.requires_grad_(False)
