"""Discover plugins through the ``zoo.plugins`` entry points and call their hooks, one plugin at a time.

Failures are data: a plugin that fails to import, to register with pluggy, or whose hook raises is recorded
with its stage and a one-line error, its partial entries are rolled back, and every other plugin still
loads. ``ZOO_STRICT_PLUGINS=1`` re-raises instead. ``ZOO_LOAD_PLUGINS=a,b`` loads only those entry points
(empty: none); ``ZOO_DISABLE_PLUGINS=a,b`` blocks some.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

import pluggy

from zoo_core import hookspecs
from zoo_core.errors import DuplicateNameError

if TYPE_CHECKING:
    from zoo_core.registry import Registry

GROUP = "zoo.plugins"
BUILTIN_DISTRIBUTION = "zoo-models"
REGISTRY_HOOKS = {
    "model": "register_models",
    "dataset": "register_datasets",
    "augmentation": "register_augmentations",
    "optimizer": "register_optimizers",
}


@dataclass
class PluginError:
    stage: str  # import, register, register_models, ..., register_commands, duplicate
    message: str


@dataclass
class PluginInfo:
    """What zoo knows of one plugin: where it comes from, which hooks it has, and what went wrong."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    hooks: list[str] = field(default_factory=list)
    errors: list[PluginError] = field(default_factory=list)
    status: str = "ok"  # ok, error, disabled

    def fail(self, stage: str, exc: BaseException | str) -> None:
        message = exc if isinstance(exc, str) else one_line(exc)
        self.errors.append(PluginError(stage, message))
        self.status = "error"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "hooks": self.hooks,
            "status": self.status,
            "errors": [{"stage": e.stage, "message": e.message} for e in self.errors],
        }


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _env_list(name: str) -> list[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


def strict() -> bool:
    return os.environ.get("ZOO_STRICT_PLUGINS", "").lower() in {"1", "true", "yes"}


def _is_builtin(ep: EntryPoint) -> bool:
    dist = getattr(ep, "dist", None)
    return dist is not None and dist.metadata["Name"] == BUILTIN_DISTRIBUTION


def discover() -> list[EntryPoint]:
    """Entry points of the group, filtered by ZOO_LOAD_PLUGINS / ZOO_DISABLE_PLUGINS; zoo's own built-ins
    first (so no third party can take a built-in name), then the rest by name."""
    found = {ep.name: ep for ep in entry_points(group=GROUP)}  # the last install of a name wins
    only, blocked = _env_list("ZOO_LOAD_PLUGINS"), _env_list("ZOO_DISABLE_PLUGINS") or []
    return [
        found[name]
        for name in sorted(found, key=lambda n: (not _is_builtin(found[n]), n))
        if (only is None or name in only) and name not in blocked
    ]


class PluginManager:
    """pluggy's manager plus the per-plugin report; hooks are called one plugin at a time."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}

    def load_entry_points(self) -> None:
        for ep in discover():
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                ep.name, ep.value, dist.metadata["Name"] if dist else None, dist.version if dist else None
            )
            self.plugins[ep.name] = info
            try:
                module = ep.load()
            except Exception as exc:
                info.fail("import", exc)
                if strict():
                    raise
                continue
            self.add(ep.name, module, info)

    def add(self, name: str, plugin: object, info: PluginInfo | None = None) -> None:
        """Register an already imported plugin object (a module or any object with hookimpls)."""
        info = info or self.plugins.setdefault(
            name, PluginInfo(name, getattr(plugin, "__name__", repr(plugin)))
        )
        self.plugins[name] = info
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:
            info.fail("register", exc)
            if strict():
                raise
            return
        info.hooks = sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or [])

    def _impls(self, hook_name: str) -> list[tuple[str, Callable[..., Any]]]:
        hook = getattr(self.pm.hook, hook_name)
        impls = [(impl.plugin_name, impl.function) for impl in reversed(hook.get_hookimpls())]
        # zoo's own plugins first, whatever pluggy's order: the first registration of a name keeps it, so no
        # third party can take a built-in name
        return sorted(impls, key=lambda item: self.plugins[item[0]].distribution != BUILTIN_DISTRIBUTION)

    def fill(self, registry: Registry) -> None:
        """Call every plugin's hook for ``registry``'s kind, isolating failures and rolling them back."""
        hook_name = REGISTRY_HOOKS[registry.kind]
        for name, function in self._impls(hook_name):
            info = self.plugins[name]
            seen = len(registry.conflicts)
            try:
                with registry.owned_by(name):
                    function(registry=registry)
            except Exception as exc:
                info.fail(hook_name, exc)
                registry.failed_plugins.append(name)
                if strict():
                    raise
            for _, message in registry.conflicts[seen:]:
                info.fail("duplicate", message)
                if strict():
                    raise DuplicateNameError(message)

    def add_commands(self, cli: Any) -> None:
        """Let plugins add click commands; a failing hook is recorded and its commands removed."""
        for name, function in self._impls("register_commands"):
            before = dict(cli.commands)
            try:
                function(cli=cli)
            except Exception as exc:
                cli.commands.clear()
                cli.commands.update(before)
                self.plugins[name].fail("register_commands", exc)
                if strict():
                    raise
                continue
            for command in set(cli.commands) - set(before):
                cli.commands[command].zoo_plugin = name  # type: ignore[attr-defined]

    def report(self) -> list[PluginInfo]:
        return [self.plugins[name] for name in sorted(self.plugins)]

    def failures(self) -> list[PluginInfo]:
        return [info for info in self.report() if info.status == "error"]
