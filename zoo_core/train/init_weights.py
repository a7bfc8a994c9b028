"""Starting a run from existing weights (``zoo train --init SOURCE``) and training only the head
(``--freeze-backbone``).

SOURCE is a run directory (its best weights), a zoo ``.safetensors`` file, a plain state-dict file
(``.safetensors``, or ``.pt``/``.pth``/``.bin`` read with ``torch.load(weights_only=True)``, which executes
nothing), or ``pretrained``: the weights the model's builder publishes (timm's ``pretrained=True``,
torchvision's weights). A builder offers weights by taking a ``pretrained`` keyword; called with
``pretrained=True`` and ``num_classes=None`` it returns the model exactly as its weights were published.

Tensors match by name and shape: a tensor whose shape differs (the classifier when the class count differs,
a stem built for other channels) keeps the new model's fresh initialisation, "re-made"; a source tensor the
model has no name for is "unused". One line reports the three counts.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo_core.errors import BadInputError, ZooError
from zoo_core.progress import Phase

PRETRAINED = "pretrained"
STATE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


@dataclass
class InitReport:
    """What ``--init`` did: tensor names loaded, re-made (shape differs) and unused (no such name)."""

    source: str
    loaded: list[str] = field(default_factory=list)
    remade: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # the model's tensors the source does not name

    def line(self) -> str:
        def some(names: list[str]) -> str:
            return f" ({', '.join(names[:3])}{', …' if len(names) > 3 else ''})" if names else ""

        text = (
            f"--init {self.source}: {len(self.loaded)} tensors loaded, {len(self.remade)} re-made"
            f"{some(self.remade)}, {len(self.unused)} unused{some(self.unused)}"
        )
        if self.missing:
            text += f"; {len(self.missing)} not in the source{some(self.missing)}"
        return text


def prepare_model(
    model: nn.Module,
    cfg: Any,
    *,
    model_kwargs: dict[str, Any],
    resuming: bool,
    announce: bool = True,
) -> InitReport | None:
    """The Trainer's one call, after the model is built and before the optimizer: load ``cfg.init`` (not
    when resuming: last.pt holds the weights) and freeze all but the head when ``cfg.freeze_backbone`` (also
    when resuming, so that the optimizer is built over the same parameters as the saved one)."""
    report = None
    source = getattr(cfg, "init", None)
    if source and not resuming:
        state = read_source(source, model_name=cfg.model, model_kwargs=model_kwargs)
        report = load_matching(model, state, source=source)
        if announce:
            print(report.line(), file=sys.stderr, flush=True)
    if getattr(cfg, "freeze_backbone", False):
        trainable = freeze_backbone(model, model_kwargs["num_classes"])
        if announce and not resuming:
            count = sum(p.numel() for p in model.parameters() if p.requires_grad)
            total = sum(p.numel() for p in model.parameters())
            print(
                f"--freeze-backbone: training {', '.join(trainable)} only "
                f"({count:,} of {total:,} parameters)",
                file=sys.stderr,
                flush=True,
            )
    return report


def read_source(source: str, *, model_name: str, model_kwargs: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors of ``--init SOURCE`` by name (wrapper prefixes removed), on the CPU."""
    if source == PRETRAINED:
        return _pretrained_state(model_name, model_kwargs)
    path = Path(source).expanduser()
    if path.is_dir():
        from zoo_core.train.checkpoint import resolve_checkpoint

        path = resolve_checkpoint(path)
    elif not path.is_file():
        raise BadInputError(
            f"--init {source}: no such run directory or weights file (or say 'pretrained' for the "
            "builder's own weights)"
        )
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except (SafetensorError, OSError) as err:
            raise BadInputError(f"--init {source}: not a readable safetensors file ({err})") from err
    elif path.suffix in STATE_SUFFIXES:
        state = _torch_state(path, source)
    else:
        raise BadInputError(
            f"--init {source}: expected a run directory, a .safetensors file or a state dict "
            f"({', '.join(STATE_SUFFIXES)}), not {path.suffix or 'a file without suffix'}"
        )
    return {_plain_name(name): tensor for name, tensor in state.items()}


def load_matching(model: nn.Module, state: dict[str, torch.Tensor], *, source: str) -> InitReport:
    """Copy the tensors of ``state`` whose name and shape match into ``model``; report the rest."""
    own = model.state_dict()
    report = InitReport(source=source)
    matched = {}
    for name, tensor in state.items():
        if name not in own:
            report.unused.append(name)
        elif own[name].shape != tensor.shape:
            report.remade.append(name)
        else:
            matched[name] = tensor
            report.loaded.append(name)
    report.missing = [name for name in own if name not in state]
    if not matched:
        raise BadInputError(
            f"--init {source}: none of its {len(state)} tensors fits the model by name and shape "
            f"(e.g. {', '.join(list(state)[:2]) or 'none'}); are these weights of the same architecture?"
        )
    model.load_state_dict(matched, strict=False)
    return report


def find_head(model: nn.Module, num_classes: int) -> nn.Module | None:
    """The classifier: timm's ``get_classifier()``, else the last Linear (or 1×1 conv) with ``num_classes``
    outputs in registration order, which is where every builder here and in torchvision defines it."""
    getter = getattr(model, "get_classifier", None)
    if callable(getter):
        head = getter()
        if isinstance(head, nn.Module) and any(True for _ in head.parameters()):
            return head
    found = None
    for module in model.modules():
        if (isinstance(module, nn.Linear) and module.out_features == num_classes) or (
            isinstance(module, nn.Conv2d)
            and module.kernel_size == (1, 1)
            and module.out_channels == num_classes
        ):
            found = module
    return found


def freeze_backbone(model: nn.Module, num_classes: int) -> list[str]:
    """Freeze every parameter outside the head; keep the backbone's BatchNorm statistics fixed too (its
    layers run in eval mode even while the model trains), so the head learns on the features it will be
    evaluated on. Returns the names of the parameters that still train."""
    head = find_head(model, num_classes)
    if head is None:
        raise BadInputError(
            f"--freeze-backbone: found no classifier in this model (a last Linear or 1×1 conv with "
            f"{num_classes} outputs)"
        )
    head_params = {id(p) for p in head.parameters()}
    trainable = []
    for name, param in model.named_parameters():
        keep = id(param) in head_params
        param.requires_grad_(keep)
        if keep:
            trainable.append(name)
    head_modules = {id(m) for m in head.modules()}
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and id(module) not in head_modules:
            module.register_forward_pre_hook(_keep_in_eval_mode)
    return trainable


def _keep_in_eval_mode(module: nn.Module, args: Any) -> None:
    module.training = False  # a frozen norm layer normalizes with, and never updates, its running statistics


def _plain_name(name: str) -> str:
    """The name without the wrappers' prefixes: DistributedDataParallel's ``module.`` and torch.compile's
    ``_orig_mod.`` (which a compiled submodule leaves in the middle of a name)."""
    name = name.replace("_orig_mod.", "")
    while name.startswith("module."):
        name = name.removeprefix("module.")
    return name


def _torch_state(path: Path, source: str) -> dict[str, torch.Tensor]:
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError… for unsafe or bad files
        reason = " ".join(str(err).split())[:200] or type(err).__name__
        raise BadInputError(
            f"--init {source}: cannot read it as a weights-only state dict ({reason})"
        ) from err
    # a bare state dict, or one inside a training checkpoint ({"model": …}, {"state_dict": …})
    for key in ("model", "state_dict", "model_state_dict"):
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
            break
    if not isinstance(loaded, dict):
        raise BadInputError(f"--init {source}: holds a {type(loaded).__name__}, not a state dict")
    tensors = {str(k): v for k, v in loaded.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise BadInputError(f"--init {source}: holds no tensors")
    return tensors


def _pretrained_state(model_name: str, model_kwargs: dict[str, Any]) -> dict[str, torch.Tensor]:
    from zoo_core.catalog import get_catalog
    from zoo_core.registry import _build_in_namespace, resolve

    entry = get_catalog().models.get(model_name)
    builder = entry.builder
    if isinstance(builder, partial) and builder.func is _build_in_namespace:
        function = resolve(builder.args[0])
    else:
        function = entry.load()
    try:
        takes = "pretrained" in inspect.signature(function).parameters
    except (TypeError, ValueError):
        takes = False
    if not takes:
        raise BadInputError(
            f"--init pretrained: model '{entry.name}' has no pretrained weights (its builder takes no "
            "'pretrained'); start from a run or a weights file instead (--init RUN_DIR|FILE)"
        )
    kwargs = {k: v for k, v in model_kwargs.items() if k != "num_classes"}
    try:  # the builder downloads them (its own bar on a terminal); the phase keeps a log alive meanwhile
        with Phase(f"getting the pretrained weights of {entry.name}", unit="step"):
            source = entry.build(pretrained=True, num_classes=None, **kwargs)
    except ZooError:
        raise
    except Exception as err:  # a download that fails (offline, hub down) or weights that do not exist
        reason = " ".join(str(err).split())[:200] or type(err).__name__
        raise ZooError(
            f"--init pretrained: could not get the pretrained weights of {entry.name}: {reason}"
        ) from err
    return {_plain_name(name): tensor.detach().cpu() for name, tensor in source.state_dict().items()}
