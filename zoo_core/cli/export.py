"""``zoo export``: write a registered data set as an ImageFolder tree of PNG files, WebDataset shards or
parquet files."""

from __future__ import annotations

from pathlib import Path

import click

from zoo_core.cli.common import RegistryName
from zoo_core.errors import BadInputError

FORMATS = ("imagefolder", "wds", "parquet")


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
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="imagefolder",
    show_default=True,
    help="imagefolder: DIRECTORY/<split>/<class>/NNNNN.png; wds: WebDataset shards <split>-NNNNNN.tar "
    "(KEY.png, KEY.cls) with classes.txt and <split>-shards.json; parquet: <split>-NNNNN-of-NNNNN.parquet "
    "(Hugging Face's layout, image and label columns).",
)
@click.option(
    "--shard-size",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="wds and parquet: samples per file.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the data set's files are (default: $ZOO_DATA, else ~/.cache/zoo).",
)
@click.option("--download", is_flag=True, help="Fetch the data set first if it is missing.")
@click.option(
    "--dataset-arg",
    "dataset_args",
    multiple=True,
    metavar="KEY=VALUE[,KEY=VALUE]",
    help="Extra data set keyword(s), as for zoo train (e.g. image_size=64).",
)
def export_command(
    dataset: str,
    directory: Path,
    split: str,
    fmt: str,
    shard_size: int,
    data_dir: Path | None,
    download: bool,
    dataset_args: tuple[str, ...],
) -> None:
    """Write DATASET as an ImageFolder tree, WebDataset shards or parquet files in DIRECTORY.

    Images are written as PNG (lossless), file names and keys are each image's index within its split:
    the files read back through `imagefolder`, `wds` or `hf` as the same images and labels.

    \b
    Examples:
      zoo export cifar10 ~/data/cifar10-png --split test
      zoo export tv/cifar100 ~/data/cifar100-wds --format wds --shard-size 5000
      zoo export imagefolder ~/data/pets-parquet --format parquet --data-dir ~/data/pets
    """
    from zoo_core.catalog import get_catalog
    from zoo_core.cli.train import parse_key_values, split_pairs
    from zoo_core.data.export import export_image_folder, splits_to_export
    from zoo_core.data.export_shards import export_parquet, export_wds

    entry = get_catalog().datasets.get(dataset)
    names = splits_to_export(split, entry.meta.get("splits") or ("train", "test"))
    if fmt == "imagefolder":
        taken = [str(directory / name) for name in names if (directory / name).exists()]
        if taken:
            raise BadInputError(f"{', '.join(taken)} already exist(s); remove it or choose another directory")
    kwargs = parse_key_values(tuple(p for a in dataset_args for p in split_pairs(a)), "--dataset-arg")
    if download:
        kwargs["download"] = True
    for name in names:
        data = entry.build(root=data_dir, split=name, **kwargs)
        if fmt == "imagefolder":
            written = [export_image_folder(data, directory, name)]
        else:
            writer = export_wds if fmt == "wds" else export_parquet
            written = writer(data, directory, name, shard_size=shard_size)
        count = len(data.labels) if hasattr(data, "labels") else len(data)
        where = written[0] if len(written) == 1 else f"{len(written)} files in {directory}"
        click.echo(f"wrote {count} images of {len(data.classes)} classes to {where}", err=True)
