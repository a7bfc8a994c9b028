"""``zoo export``: write a registered data set as an ImageFolder tree of PNG files."""

from __future__ import annotations

from pathlib import Path

import click

from zoo_core.cli.common import RegistryName
from zoo_core.errors import BadInputError


@click.command("export")
@click.argument("dataset", type=RegistryName("dataset"))
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--split",
    default="all",
    show_default=True,
    help="Which split to write: train, test (or another the data set has), or all.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the data set's files are (default: $ZOO_DATA, else ~/.cache/zoo).",
)
@click.option("--download", is_flag=True, help="Fetch the data set first if it is missing.")
def export_command(dataset: str, directory: Path, split: str, data_dir: Path | None, download: bool) -> None:
    """Write DATASET as an ImageFolder tree: DIRECTORY/<split>/<class>/NNNNN.png.

    File names are each image's index within its split. The tree reads back through `imagefolder` (and,
    for CIFAR-10, through `cifar10`) as the same images and labels.

    \b
    Example:
      zoo export cifar10 ~/data/cifar10-png --split test
    """
    from zoo_core.catalog import get_catalog
    from zoo_core.data.export import export_image_folder, splits_to_export

    entry = get_catalog().datasets.get(dataset)
    names = splits_to_export(split, entry.meta.get("splits") or ("train", "test"))
    taken = [str(directory / name) for name in names if (directory / name).exists()]
    if taken:
        raise BadInputError(f"{', '.join(taken)} already exist(s); remove it or choose another directory")
    for name in names:
        data = entry.build(root=data_dir, split=name, download=download)
        target = export_image_folder(data, directory, name)
        click.echo(f"wrote {len(data.labels)} images of {len(data.classes)} classes to {target}", err=True)
