"""The last word on a run's defaults, once its training data are built: the data set's own recipe for what
it holds, and a batch that fits the training split.

The registered recipe of a data set is fixed; a data set whose best settings depend on its contents (an
``imagefolder`` tree of 300 or of 30,000 images) returns, from its builder, an object with a ``recipe``
dict. Its values fill every setting the user left unset, over the registered (and model) recipe: the data
in hand know better than a registration written for no data in particular. Options given by the user win.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

from zoo_core.errors import BadInputError
from zoo_core.train.config import TrainConfig


def refine_for_data(
    requested: TrainConfig, cfg: TrainConfig, train_set: Any, *, world_size: int = 1, announce: bool = True
) -> TrainConfig:
    """``cfg`` (``requested`` completed by the registered recipes) with ``train_set.recipe`` applied to the
    settings ``requested`` leaves unset, and a global batch no larger than the training split.

    Each change is said in one line on stderr when ``announce``."""
    own = getattr(train_set, "recipe", None) or {}
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    updates = {
        key: value
        for key, value in own.items()
        if key in fields and getattr(requested, key, None) is None and getattr(cfg, key) != value
    }
    if updates:
        cfg = dataclasses.replace(cfg, **updates)
        cfg.validate()
        if announce:
            said = ", ".join(f"{key} {value}" for key, value in updates.items())
            print(
                f"{cfg.dataset}: recipe sized to {len(train_set):,} training images: {said} "
                f"(zoo info {cfg.dataset})",
                file=sys.stderr,
                flush=True,
            )
    images = len(train_set)
    if cfg.batch_size is not None and cfg.batch_size > images:
        batch = fitting_batch(images, world_size)
        if announce:
            print(
                f"batch {cfg.batch_size} is larger than the training set ({images} images): training with "
                f"batch {batch}",
                file=sys.stderr,
                flush=True,
            )
        cfg = dataclasses.replace(cfg, batch_size=batch)
    return cfg


def fitting_batch(images: int, world_size: int = 1) -> int:
    """The largest power of two, times ``world_size``, that is no larger than ``images``."""
    per_rank = images // world_size
    if per_rank < 1:
        raise BadInputError(
            f"The training set ({images} images) is smaller than the number of ranks ({world_size})"
        )
    batch = 1
    while batch * 2 <= per_rank:
        batch *= 2
    return batch * world_size
