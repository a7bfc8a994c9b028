"""``zoo check PLUGIN``: the conformance checks of one plugin's entries, as ``zoo_core.kit.testing``
runs them."""

from __future__ import annotations

from pathlib import Path

import click

from zoo_core.catalog import get_catalog
from zoo_core.cli.common import echo_json


@click.command("check")
@click.argument("plugin")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the data sets' files are (default: $ZOO_DATA, else ~/.cache/zoo); without them, "
    "their split checks are skipped.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def check_command(plugin: str, data_dir: Path | None, as_json: bool) -> None:
    """Check that PLUGIN's entries honour zoo's contracts, exactly as zoo_core.kit.testing does.

    \b
    models         metadata, builder import, declared params and input_size against the built
                   module, logits at 10/100 classes and 1/3 channels, backward, channels_last,
                   eval determinism, safetensors round trip
    data sets      both splits built: dtypes, shapes, label range, declared metadata, same
                   classes in both, one batch through the training loader
    augmentations  shape kept, targets (soft ones summing to 1), batches of 1/7/8, seeded
                   repeat, CUDA when there is a device
    optimizers     metadata (options), signature (param_groups, *, lr, **options) with every
                   option declared, built over zoo's parameter groups, a regression loss falls,
                   state dict round trip (weights_only); matrices_only: 1-D refused, others

    Prints a table with the reason for every failure; exits 1 if any check fails, else 0.
    PLUGIN is an entry-point name from `zoo plugins` (e.g. builtin.models).
    """
    from zoo_core.kit.conformance import check_plugin, format_table

    checks = list(check_plugin(get_catalog(), plugin, root=data_dir))
    if as_json:
        echo_json([c.to_dict() for c in checks])
    else:
        click.echo(format_table(checks))
    if any(not c.ok for c in checks):
        click.get_current_context().exit(1)
