"""Shared pieces of the command line: registry-name parameters, device choice and output helpers."""

from __future__ import annotations

import json
from typing import Any

import click

from zoo_core.errors import ZooError


class RegistryName(click.ParamType):
    """A name from one registry: validated (with a close-match suggestion) and completed in the shell."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.name = f"{kind} name"

    def _registry(self) -> Any:
        from zoo_core.catalog import get_catalog

        return get_catalog().registry(self.kind)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return self._registry().get(value).name
        except ZooError as exc:
            self.fail(str(exc), param, ctx)

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
        from click.shell_completion import CompletionItem

        registry = self._registry()
        pattern = incomplete.lower() + "*"
        return [CompletionItem(name, help=registry.get(name).summary) for name in registry.names(pattern)]


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def warn(message: str) -> None:
    click.echo(f"zoo: warning: {message}", err=True)


SETTING_UP = "zoo.setting_up"  # the key of the set-up phase in the click context's meta
SETUP_QUIET = 5.0  # seconds of set-up before it is said (then every 30 s until the first epoch's lines)


def setting_up(ctx: click.Context) -> Any:
    """The set-up phase of ``zoo train`` (a ``zoo_core.progress.Phase``): the group starts it before the
    arguments are checked, which may import torch and timm, so the first line comes within seconds
    however long that and the data take. Closed with the context if the command ends before it does."""
    phase = ctx.meta.get(SETTING_UP)
    if phase is None:
        from zoo_core.progress import Phase

        phase = ctx.meta[SETTING_UP] = Phase("setting up the run", unit="step", quiet=SETUP_QUIET)
        ctx.call_on_close(lambda: phase.close(finished=False))
    return phase
