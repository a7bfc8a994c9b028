"""``zoo new-plugin NAME``: write a plugin package skeleton that passes `zoo check` and its own tests."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("new-plugin")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("."),
    show_default=True,
    help="Where to create the package folder zoo-NAME.",
)
def new_plugin_command(name: str, directory: Path) -> None:
    """Create the plugin package zoo-NAME (module zoo_NAME, entry point NAME) in --dir.

    It holds a pyproject.toml with the `zoo.plugins` entry point, a registration module that never
    imports torch, one model, one data set (drawn, nothing to download) and one batch augmentation, a
    README and a test that runs zoo_core.kit.testing. As generated it passes `zoo check NAME` and its tests.

    \b
    Example:
      zoo new-plugin foo && pip install -e "./zoo-foo[test]" && zoo check foo && pytest zoo-foo
    """
    from zoo_core.kit.scaffold import new_plugin, plugin_names

    names = plugin_names(name)
    root = new_plugin(name, directory)
    click.echo(
        f"Created {root}: distribution {names.distribution}, module {names.module}, "
        f"entry point {names.entry_point}"
    )
    click.echo("Next:")
    click.echo(f'  pip install -e "{root}[test]"')
    click.echo(f"  zoo check {names.entry_point}")
    click.echo(f"  pytest {root}")
