"""zoo: a plugin-based PyTorch model zoo. Importing this package never imports torch."""

from __future__ import annotations

from zoo_core.catalog import (
    create_augmentation,
    create_dataset,
    create_model,
    create_optimizer,
    get_catalog,
    list_augmentations,
    list_datasets,
    list_models,
    list_optimizers,
    reset_catalog,
)
from zoo_core.errors import BadInputError, DataNotFoundError, UnknownNameError, ZooError
from zoo_core.hookspecs import hookimpl
from zoo_core.registry import Entry, Registry
from zoo_core.version import __version__

__all__ = [
    "BadInputError",
    "DataNotFoundError",
    "Entry",
    "Registry",
    "UnknownNameError",
    "ZooError",
    "__version__",
    "create_augmentation",
    "create_dataset",
    "create_model",
    "create_optimizer",
    "get_catalog",
    "hookimpl",
    "list_augmentations",
    "list_datasets",
    "list_models",
    "list_optimizers",
    "reset_catalog",
]
