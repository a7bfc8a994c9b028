"""The configuration of a training run: what the user asked for, completed by the data set's recipe."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo_core.device import PRECISIONS
from zoo_core.errors import BadInputError
from zoo_core.train.optim import check_param_groups, parse_optimizer_spec, parse_schedule

SCHEDULES = ("onecycle", "cosine", "step", "linear", "constant")
TTA_MODES = ("none", "flip", "flip-translate")
EMA_MODES = ("average", "lookahead")
PADDING_MODES = ("constant", "reflect")
# how a run stops and saves, beside its settings (a resumed run may change them): the Trainer's defaults
DEFAULT_STOP_SIGNALS = ("SIGTERM", "SIGUSR1", "SIGINT")
DEFAULT_SAVE_EVERY = "5m"  # chosen from the snapshot cost measured in benchmarks/results/preemption-cpu.md

# used where a data set's recipe is silent
FALLBACK_RECIPE: dict[str, Any] = {
    "augs": [],  # --aug specs (a recipe may name its own; --aug none clears them)
    "epochs": 10,
    "batch_size": 128,
    "optimizer": "sgd",
    "lr": 0.05,
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 5e-4,
    "label_smoothing": 0.0,
    "schedule": "onecycle",
    "crop_padding": 0,
    "padding_mode": "constant",
    "flip": False,
    "alternate_flip": False,
    "random_resized_crop": False,
    "precision": "auto",
    "channels_last": None,  # the device decides: zoo_core.device.default_channels_last
    "ema": 0.0,
    "ema_every": 1,
    "ema_warmup": 0.0,
    "ema_mode": "average",
    "tta": "none",
    "eval_every": 1,
    "data_init": True,
    "param_groups": [],
}


def merged_recipe(dataset: str, dataset_meta: dict[str, Any], model_meta: dict[str, Any]) -> dict[str, Any]:
    """The data set's recipe, overridden by the model's recipe for that data set (``recipe={"cifar10": …}``
    in the model's registration), e.g. a model that needs its own optimizer settings to shine."""
    model_recipes = model_meta.get("recipe") or {}
    return {**(dataset_meta.get("recipe") or {}), **(model_recipes.get(dataset) or {})}


@dataclass
class TrainConfig:
    """Every setting of a run. ``None`` means: take it from the data set's recipe."""

    dataset: str
    model: str
    augs: list[str] | None = None  # --aug specs, in order; [] is none at all (--aug none)
    epochs: int | None = None
    batch_size: int | None = None  # the global batch, split evenly over the ranks
    lr: float | None = None
    optimizer: str | None = None
    momentum: float | None = None
    nesterov: bool | None = None
    weight_decay: float | None = None
    label_smoothing: float | None = None
    schedule: str | None = None
    crop_padding: int | None = None
    padding_mode: str | None = None  # of the random crop: "constant" (zeros) or "reflect"
    flip: bool | None = None
    alternate_flip: bool | None = None  # flip each image every other epoch instead of at random
    random_resized_crop: bool | None = None  # torchvision's RandomResizedCrop per image, before the rest
    ema: float | None = None  # decay of the weight average that is evaluated and saved (0: none)
    ema_every: int | None = None  # optimizer steps between updates of the average
    ema_warmup: float | None = None  # decay × (step / total) ** ema_warmup: early updates average less
    ema_mode: str | None = None  # "lookahead": the model restarts from the average after each update
    tta: str | None = None  # test-time augmentation of the final evaluation
    eval_every: int | None = None  # epochs between evaluations (0: only the final one)
    data_init: bool | None = None  # call the model's init_from_data(images) before the first step
    param_groups: list[dict[str, Any]] | None = None  # see zoo_core.train.optim
    init: str | None = None  # start from: a run, a weights file or "pretrained" (zoo_core.train.init_weights)
    freeze_backbone: bool = False  # train only the classifier (a linear probe)
    device: str = "auto"
    precision: str | None = None
    channels_last: bool | None = None
    compile: bool = False
    seed: int = 0
    data_dir: str | None = None
    dataset_kwargs: dict[str, Any] = field(default_factory=dict)
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    tensorboard: bool = True
    log_every: int = 50  # steps between progress updates (the only host syncs inside an epoch)

    def with_recipe(self, recipe: dict[str, Any] | None) -> TrainConfig:
        """A copy with every unset value taken from ``recipe`` (then from zoo's fallback), validated."""
        merged = {**FALLBACK_RECIPE, **(recipe or {})}
        values = {
            f.name: merged[f.name]
            if getattr(self, f.name) is None and f.name in merged
            else getattr(self, f.name)
            for f in dataclasses.fields(self)
        }
        config = TrainConfig(**values)
        config.validate()
        return config

    def validate(self) -> None:
        checks = [
            (
                isinstance(self.augs, list) and all(isinstance(a, str) and a for a in self.augs),
                f"augs must be a list of --aug specs, not {self.augs!r}",
            ),
            (self.epochs is not None and self.epochs >= 1, f"--epochs must be at least 1, not {self.epochs}"),
            (
                self.batch_size is not None and self.batch_size >= 1,
                f"--batch-size must be ≥ 1, not {self.batch_size}",
            ),
            (self.lr is not None and self.lr > 0, f"--lr must be positive, not {self.lr}"),
            (isinstance(self.optimizer, str) and bool(self.optimizer), "--optimizer must be NAME[:k=v,...]"),
            (
                str(self.schedule).partition(":")[0] in SCHEDULES,
                f"--schedule must be one of {', '.join(SCHEDULES)}",
            ),
            (self.precision in PRECISIONS, f"--precision must be one of {', '.join(PRECISIONS)}"),
            (0 <= (self.label_smoothing or 0) < 1, "--label-smoothing must be in [0, 1)"),
            ((self.weight_decay or 0) >= 0, "--weight-decay must be ≥ 0"),
            (0 <= (self.ema or 0) < 1, f"--ema must be in [0, 1), not {self.ema}"),
            ((self.ema_every or 1) >= 1, f"--ema-every must be at least 1, not {self.ema_every}"),
            ((self.ema_warmup or 0) >= 0, f"--ema-warmup must be ≥ 0, not {self.ema_warmup}"),
            (self.ema_mode in EMA_MODES, f"--ema-mode must be one of {', '.join(EMA_MODES)}"),
            (self.tta in TTA_MODES, f"--tta must be one of {', '.join(TTA_MODES)}"),
            (
                isinstance(self.eval_every, int) and self.eval_every >= 0,
                f"--eval-every must be an integer ≥ 0, not {self.eval_every}",
            ),
            (
                self.padding_mode in PADDING_MODES,
                f"--padding-mode must be one of {', '.join(PADDING_MODES)}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise BadInputError(message)
        parse_schedule(self.schedule)  # its options
        self.check_optimizers()
        check_param_groups(self.param_groups)

    def check_optimizers(self) -> None:
        """Every optimizer the run names (``--optimizer`` and the groups') is registered (the specs' options
        are checked at set-up, before the data loads: ``optim.check_optimizer_specs``)."""
        from zoo_core.catalog import get_catalog

        specs = [self.optimizer, *(g.get("optimizer") for g in self.param_groups or [])]
        for spec in filter(None, specs):
            get_catalog().optimizers.get(parse_optimizer_spec(spec)[0])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
