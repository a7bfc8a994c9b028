"""The configuration of a training run: what the user asked for, completed by the data set's recipe."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo_core.errors import BadInputError

OPTIMIZERS = ("sgd", "adamw", "adam", "rmsprop")
SCHEDULES = ("onecycle", "cosine", "step", "constant")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")

# used where a data set's recipe is silent
FALLBACK_RECIPE: dict[str, Any] = {
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
    "flip": False,
}


@dataclass
class TrainConfig:
    """Every setting of a run. ``None`` means: take it from the data set's recipe."""

    dataset: str
    model: str
    augs: list[str] = field(default_factory=list)
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
    flip: bool | None = None
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool = False
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
            (self.epochs is not None and self.epochs >= 1, f"--epochs must be at least 1, not {self.epochs}"),
            (
                self.batch_size is not None and self.batch_size >= 1,
                f"--batch-size must be ≥ 1, not {self.batch_size}",
            ),
            (self.lr is not None and self.lr > 0, f"--lr must be positive, not {self.lr}"),
            (self.optimizer in OPTIMIZERS, f"--optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.schedule in SCHEDULES, f"--schedule must be one of {', '.join(SCHEDULES)}"),
            (self.precision in PRECISIONS, f"--precision must be one of {', '.join(PRECISIONS)}"),
            (0 <= (self.label_smoothing or 0) < 1, "--label-smoothing must be in [0, 1)"),
            ((self.weight_decay or 0) >= 0, "--weight-decay must be ≥ 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise BadInputError(message)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
