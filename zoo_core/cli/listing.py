"""``zoo list``, ``zoo plugins`` and ``zoo info``: what is installed, without importing torch
(``zoo info`` of a model imports it to count parameters on the meta device)."""

from __future__ import annotations

import contextlib
import inspect
import json
import shutil
from typing import Any

import click

from zoo_core.catalog import Catalog, get_catalog
from zoo_core.cli.common import echo_json, warn
from zoo_core.errors import UnknownNameError
from zoo_core.registry import KINDS, Entry, Registry, suggest

KIND_ARGS = {
    "models": "model",
    "datasets": "dataset",
    "augmentations": "augmentation",
    "optimizers": "optimizer",
}
# the key metadata shown as columns in `zoo list`, per kind
COLUMNS = {
    "model": ("family", "input_size", "params"),
    "dataset": ("num_classes", "input_size", "splits"),
    "augmentation": ("level", "soft_targets"),
    "optimizer": ("matrices_only",),
}


def fmt(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key == "params" and isinstance(value, int):
        return f"{value / 1e6:.2f}M" if value >= 1e5 else f"{value / 1e3:.1f}k"
    if isinstance(value, (tuple, list)):
        return "x".join(map(str, value)) if key == "input_size" else ",".join(map(str, value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns; the last column is cut to the terminal width."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    room = shutil.get_terminal_size((120, 20)).columns - sum(w + 2 for w in widths[:-1])
    lines = []
    for row in [headers, *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        last = row[-1] if len(row[-1]) <= max(room, 20) else row[-1][: max(room, 20) - 1] + "…"
        lines.append("  ".join([*cells, last]).rstrip())
    return "\n".join(lines)


def entry_dict(entry: Entry) -> dict[str, Any]:
    return {
        "kind": entry.kind,
        "name": entry.name,
        "plugin": entry.plugin,
        "summary": entry.summary,
        "aliases": list(entry.aliases),
        **{key: value for key, value in entry.meta.items()},
    }


def _selected(registry: Registry, patterns: tuple[str, ...]) -> tuple[list[Entry], list[Any]]:
    names = registry.names(include=list(patterns) or None)
    entries = [registry.get(name) for name in names]
    # a namespace is shown as one row unless a pattern asked for its names
    namespaces = [
        ns
        for prefix, ns in registry.namespaces.items()
        if not any(p.lower().startswith(prefix + "/") for p in patterns)
        and (not patterns or any(_fnmatch(f"{prefix}/*", p) for p in patterns))
    ]
    return entries, namespaces


def _fnmatch(name: str, pattern: str) -> bool:
    import fnmatch

    return fnmatch.fnmatchcase(name, pattern.lower()) or fnmatch.fnmatchcase(pattern.lower(), name)


def _warn_failures(catalog: Catalog) -> None:
    failed = catalog.manager.failures()
    if failed:
        names = ", ".join(info.name for info in failed)
        warn(f"{len(failed)} plugin(s) had errors ({names}); see: zoo plugins")


@click.command("list")
@click.argument("args", nargs=-1, metavar="[models|datasets|augmentations|optimizers] [PATTERN]...")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_command(args: tuple[str, ...], as_json: bool) -> None:
    """List registered models, data sets, augmentations and optimizers.

    PATTERN is a shell-style pattern ('resnet*'). Names from a namespace such as timm are listed only
    when a pattern asks for them: zoo list models 'timm/*'.
    """
    kinds = list(KINDS)
    if args and args[0].lower() in KIND_ARGS:
        kinds, args = [KIND_ARGS[args[0].lower()]], args[1:]
    catalog = get_catalog()
    _warn_failures(catalog)
    sections = {kind: _selected(catalog.registry(kind), args) for kind in kinds}
    if as_json:
        out = []
        for kind, (entries, namespaces) in sections.items():
            out += [entry_dict(e) for e in entries]
            out += [
                {
                    "kind": kind,
                    "name": f"{ns.prefix}/*",
                    "plugin": ns.plugin,
                    "summary": ns.summary,
                    **ns.meta,
                }
                for ns in namespaces
            ]
        echo_json(out)
        return
    if args and not any(entries or namespaces for entries, namespaces in sections.values()):
        hint = suggest(args[0], KIND_ARGS) if len(kinds) > 1 else ""
        click.echo(f"No {' or '.join(k + 's' for k in kinds)} match {' '.join(args)!r}.{hint}", err=True)
    for kind, (entries, namespaces) in sections.items():
        if not entries and not namespaces:
            continue
        columns = COLUMNS[kind]
        rows = [
            [e.name, e.plugin or "-", *(fmt(c, e.meta.get(c)) for c in columns), e.summary] for e in entries
        ]
        rows += [
            [f"{ns.prefix}/*", ns.plugin or "-", *("-" for _ in columns), ns.summary] for ns in namespaces
        ]
        if len(kinds) > 1:
            click.secho(f"{kind}s ({len(rows)})", bold=True)
        click.echo(table(["name", "plugin", *columns, "summary"], rows))
        if len(kinds) > 1:
            click.echo()


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins_command(as_json: bool) -> None:
    """Show installed plugins: distribution, version, hooks, status and errors."""
    report = get_catalog().plugins
    if as_json:
        echo_json([info.as_dict() for info in report])
        return
    rows = []
    for info in report:
        dist = f"{info.distribution or '-'} {info.version or ''}".strip()
        hooks = ",".join(h.removeprefix("register_") for h in info.hooks) or "-"
        rows.append([info.name, dist, hooks, info.status])
    click.echo(table(["plugin", "distribution", "hooks", "status"], rows))
    for info in report:
        for error in info.errors:
            click.echo(f"{info.name}: {error.stage}: {error.message}")


def _find(catalog: Catalog, name: str) -> list[Entry]:
    found = []
    for kind in KINDS:
        with contextlib.suppress(UnknownNameError):
            found.append(catalog.registry(kind).get(name))
    prefix = name.lower().partition("/")[0]
    if not found and "/" in name:  # a namespace name: its registry suggests from the namespace's names
        for kind in KINDS:
            if prefix in catalog.registry(kind).namespaces:
                catalog.registry(kind).get(name)
    if not found:
        known = [n for kind in KINDS for n in catalog.registry(kind).names()]
        raise UnknownNameError(f"Unknown name {name!r}.{suggest(name, known)} (see: zoo list)")
    return found


def count_params(entry: Entry) -> int:
    """Parameters of a model at its registered defaults, built on the meta device: nothing is allocated."""
    import torch

    from zoo_core.kit import contracts

    input_size = contracts.model_input_size(entry.meta, f"model {entry.name!r}: input_size")
    with torch.device("meta"):
        model = entry.build(num_classes=contracts.model_num_classes(entry.meta), in_chans=input_size[0])
    return contracts.count_params(model)


def describe(entry: Entry) -> dict[str, Any]:
    info = entry_dict(entry)
    info["builder"] = entry.target
    if entry.kind == "model":
        info["params"] = count_params(entry)
    try:
        signature = inspect.signature(entry.load())
        info["arguments"] = [
            str(p).replace("'", "") for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD
        ]
    except (TypeError, ValueError):
        pass
    return info


@click.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info_command(name: str, as_json: bool) -> None:
    """Show everything known about one registered name (model, data set or augmentation).

    For a model, the parameter count is computed on the meta device, without allocating weights.
    """
    details = [describe(entry) for entry in _find(get_catalog(), name)]
    if as_json:
        echo_json(details if len(details) > 1 else details[0])
        return
    for i, info in enumerate(details):
        if i:
            click.echo()
        click.secho(f"{info['name']} ({info['kind']})", bold=True)
        if info["summary"]:
            click.echo(f"  {info['summary']}")
        for key, value in info.items():
            if key in {"name", "kind", "summary"} or value in ([], "", None):
                continue
            if isinstance(value, dict):
                click.echo(f"  {key}:")
                for k, v in value.items():
                    click.echo(f"    {k}: {json.dumps(v) if not isinstance(v, str) else v}")
            elif isinstance(value, list) and value and key == "arguments":
                click.echo(f"  {key}: {', '.join(value)}")
            else:
                click.echo(f"  {key}: {fmt(key, value) if key != 'params' else f'{value:,}'}")
