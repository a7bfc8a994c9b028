"""The hooks a zoo plugin may implement; each is optional and receives the registry of its kind."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from zoo_core.registry import Registry

PROJECT = "zoo"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_models(registry: Registry) -> None:
    """Register model builders: ``registry.register(name, "pkg.module:function", **meta)``."""


@hookspec
def register_datasets(registry: Registry) -> None:
    """Register data set builders."""


@hookspec
def register_augmentations(registry: Registry) -> None:
    """Register augmentation builders (batch or sample level)."""


@hookspec
def register_optimizers(registry: Registry) -> None:
    """Register optimizer builders: ``builder(param_groups, *, lr, **options) -> torch.optim.Optimizer``."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add click commands to the ``zoo`` command line."""
