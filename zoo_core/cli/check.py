"""``zoo check PLUGIN``: conformance checks of one plugin's entries."""

from __future__ import annotations

import click

from zoo_core.catalog import get_catalog
from zoo_core.cli.common import echo_json


@click.command("check")
@click.argument("plugin")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def check_command(plugin: str, as_json: bool) -> None:
    """Check that PLUGIN's entries honour zoo's contracts: metadata present, builders import, models
    give (N, num_classes) logits and match their declared parameter count, batch augmentations keep shapes,
    give soft targets that sum to 1 and repeat for the same seed. Exits 1 if any check fails.

    PLUGIN is an entry-point name from `zoo plugins` (e.g. builtin.models).
    """
    from zoo_core.conformance import check_plugin

    checks = list(check_plugin(get_catalog(), plugin))
    failed = [c for c in checks if not c.ok]
    if as_json:
        echo_json([c.__dict__ for c in checks])
    else:
        for c in checks:
            click.echo(
                f"{'PASS' if c.ok else 'FAIL'}  {c.entry}: {c.check}" + (f" ({c.detail})" if c.detail else "")
            )
        click.echo(f"{len(checks) - len(failed)} passed, {len(failed)} failed")
    if failed:
        click.get_current_context().exit(1)
