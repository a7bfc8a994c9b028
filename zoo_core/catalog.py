"""The loaded catalog: one registry per kind, filled by every plugin's hooks, and the plugin report."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from zoo_core.plugins import PluginInfo, PluginManager
from zoo_core.registry import Registry


@dataclass
class Catalog:
    models: Registry
    datasets: Registry
    augmentations: Registry
    optimizers: Registry
    manager: PluginManager

    @property
    def plugins(self) -> list[PluginInfo]:
        return self.manager.report()

    def registry(self, kind: str) -> Registry:
        registries = {
            "model": self.models,
            "dataset": self.datasets,
            "augmentation": self.augmentations,
            "optimizer": self.optimizers,
        }
        return registries[kind]


_catalog: Catalog | None = None


def load_catalog(manager: PluginManager | None = None) -> Catalog:
    """Discover the installed plugins (or use ``manager``) and fill fresh registries from their hooks."""
    if manager is None:
        manager = PluginManager()
        manager.load_entry_points()
    catalog = Catalog(
        Registry("model"), Registry("dataset"), Registry("augmentation"), Registry("optimizer"), manager
    )
    for registry in (catalog.models, catalog.datasets, catalog.augmentations, catalog.optimizers):
        manager.fill(registry)
    return catalog


def get_catalog() -> Catalog:
    """The catalog of every installed plugin, loaded once per process."""
    global _catalog
    if _catalog is None:
        _catalog = load_catalog()
    return _catalog


def reset_catalog() -> None:
    """Forget the loaded catalog (tests; after installing a plugin in-process)."""
    global _catalog
    _catalog = None


def create_model(name: str, **kwargs: Any) -> Any:
    """Build a registered model: ``create_model("resnet18", num_classes=10)``."""
    return get_catalog().models.build(name, **kwargs)


def create_dataset(name: str, **kwargs: Any) -> Any:
    """Build a registered data set: ``create_dataset("cifar10", root=None, split="train")``."""
    return get_catalog().datasets.build(name, **kwargs)


def create_augmentation(name: str, **kwargs: Any) -> Any:
    """Build a registered augmentation: ``create_augmentation("cutmix", num_classes=10, alpha=1.0)``."""
    return get_catalog().augmentations.build(name, **kwargs)


def create_optimizer(name: str, param_groups: Any, **kwargs: Any) -> Any:
    """Build a registered optimizer: ``create_optimizer("muon", model.parameters(), lr=0.02)``."""
    return get_catalog().optimizers.build(name, param_groups, **kwargs)


def list_models(
    include: str | Iterable[str] | None = None, exclude: str | Iterable[str] | None = None
) -> list[str]:
    return get_catalog().models.names(include, exclude)


def list_datasets(
    include: str | Iterable[str] | None = None, exclude: str | Iterable[str] | None = None
) -> list[str]:
    return get_catalog().datasets.names(include, exclude)


def list_augmentations(
    include: str | Iterable[str] | None = None, exclude: str | Iterable[str] | None = None
) -> list[str]:
    return get_catalog().augmentations.names(include, exclude)


def list_optimizers(
    include: str | Iterable[str] | None = None, exclude: str | Iterable[str] | None = None
) -> list[str]:
    return get_catalog().optimizers.names(include, exclude)
