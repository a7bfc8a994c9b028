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
