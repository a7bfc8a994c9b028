"""``zoo eval``: top-1/top-5, per-class accuracy and the confusion matrix of a checkpoint on a data set."""

from __future__ import annotations

import inspect
import json
import time
from pathlib import Path
from typing import Any

import click

from zoo_core.cli.common import RegistryName, echo_json
from zoo_core.device import resolve_device
from zoo_core.errors import BadInputError, UnknownNameError


@click.command("eval")
@click.argument("checkpoint", metavar="RUN_OR_CHECKPOINT", type=click.Path(path_type=Path))
@click.argument("dataset", required=False, type=RegistryName("dataset"))
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the data set's files are (default: the run's own, else $ZOO_DATA, else ~/.cache/zoo).",
)
@click.option("--split", default="test", show_default=True, help="Which split of the data set to evaluate.")
@click.option("--batch-size", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON instead of text.")
@click.option(
    "--tta",
    type=click.Choice(["none", "flip", "flip-translate"]),
    default=None,
    help="Test-time augmentation (default: the run's own setting, from its config.json, else none).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Where to save the confusion-matrix PNG (default: next to the checkpoint).",
)
def eval_command(
    checkpoint: Path,
    dataset: str | None,
    data_dir: Path | None,
    split: str,
    batch_size: int,
    device: str,
    as_json: bool,
    tta: str | None,
    out: Path | None,
) -> None:
    """Evaluate RUN_OR_CHECKPOINT (a run directory or a .safetensors file) on DATASET.

    By default it evaluates on the run's own data: the data set, data directory and data-set options
    recorded in the run's config.json (beside the weights). DATASET and --data-dir override them; the
    classes must be the checkpoint's. The first line says what is evaluated (in --json: data_dir and
    data_source). Prints loss, top-1 and top-5 accuracy, the accuracy of each class and the confusion
    matrix, and saves the matrix as a PNG heat map.

    \b
    Examples:
      zoo eval runs/20250101-120000-mnist-lenet
      zoo eval runs/20250101-120000-cifar10-resnet18/best.safetensors --data-dir DATA --json
    """
    from zoo_core import create_dataset, get_catalog
    from zoo_core.confusion import format_confusion, save_confusion_png
    from zoo_core.data.loader import make_loader
    from zoo_core.kit.contracts import dataset_input_size
    from zoo_core.out_of_memory import memory_error, said_in_one_line
    from zoo_core.progress import track
    from zoo_core.train.checkpoint import load_model, resolve_checkpoint
    from zoo_core.train.evaluate import evaluate
    from zoo_core.train.tta import TestTimeAugmentation

    device = resolve_device(device)
    weights = resolve_checkpoint(checkpoint)
    model, card = load_model(weights, device=device)
    dataset, data_dir, run_kwargs, source = _data_to_evaluate(weights, card, dataset, data_dir)
    kwargs = {**_shape_kwargs(dataset, card.input_size, card.crop_pct), **run_kwargs}
    where = f" from {data_dir}" if data_dir else ""
    what = f"Evaluating {weights} ({card.model}) on {dataset} {split}{where} ({source})"
    data = create_dataset(dataset, root=data_dir, split=split, **kwargs)
    if list(data.classes) != card.classes:
        raise BadInputError(
            f"{dataset} ({split}) has classes {_summary(list(data.classes))} but {weights} was trained on "
            f"{_summary(card.classes)}; evaluate on a data set with the same classes"
        )
    data_size = dataset_input_size(data, get_catalog().datasets.get(dataset).meta)
    if data_size[0] != card.input_size[0]:
        raise BadInputError(
            f"{dataset} has {data_size[0]}-channel images but {weights} takes {card.input_size[0]} channels"
        )
    tta = tta or _run_setting(weights, card.model, "tta") or "none"
    if tta != "none":
        click.echo(f"Test-time augmentation: {tta}", err=True)
    started = time.perf_counter()
    loader = make_loader(
        data, batch_size=batch_size, device=device, train=False, mean=card.mean, std=card.std
    )
    name = "evaluation" if tta == "none" else f"evaluation with TTA ({tta})"
    doing = f"{name} of {card.model} (batches of {batch_size} images of {'×'.join(map(str, data_size))})"
    smaller = [f"--batch-size {max(1, batch_size // 2)}"]
    with said_in_one_line(lambda err: memory_error(err, where=doing, device=device, options=smaller)):
        result = evaluate(
            model if tta == "none" else TestTimeAugmentation(model, tta),
            track(loader, name, unit="batch"),
            num_classes=card.num_classes,
            device_type=device.split(":")[0],
        )
    seconds = time.perf_counter() - started
    title = f"{card.model} on {dataset} {split}: top-1 {result.top1:.2%}"
    png_path = out or weights.with_name(f"confusion-{dataset}-{split}.png")
    png = save_confusion_png(png_path, result.confusion, card.classes, title=title)
    if as_json:
        echo_json(
            {
                "checkpoint": str(weights),
                "model": card.model,
                "dataset": dataset,
                "split": split,
                "data_dir": str(data_dir) if data_dir else None,
                "data_source": source,
                "tta": tta,
                **result.to_dict(card.classes),
                "seconds": seconds,
                "png": str(png) if png is not None else None,
            }
        )
        return
    click.echo(what)
    click.echo(f"{weights}: {card.model} trained on {card.dataset} (zoo {card.zoo_version})")
    click.echo(f"{dataset} {split}: {result.count} images on {device} in {seconds:.1f} s")
    click.echo(f"loss {result.loss:.4f}   top-1 {result.top1:.2%}   top-{result.k} {result.top5:.2%}")
    click.echo()
    totals = result.confusion.sum(dim=1).tolist()
    click.echo(_per_class_table(card.classes, result.per_class.tolist(), totals))
    click.echo()
    click.echo(format_confusion(result.confusion, card.classes))
    click.echo()
    if png is not None:  # None: matplotlib is not installed (save_confusion_png warned)
        click.echo(f"Confusion matrix saved to {png}")


def _run_setting(weights: Path, model: str, key: str) -> Any:
    """A setting of the run the weights belong to (its config.json beside them), or None."""
    try:
        run = json.loads((weights.parent / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return run.get(key) if isinstance(run, dict) and run.get("model") == model else None


def _data_to_evaluate(
    weights: Path, card: Any, dataset: str | None, data_dir: Path | None
) -> tuple[str, Path | None, dict[str, Any], str]:
    """(data set, data dir, data-set options, where they came from): the run's own unless overridden.

    The run is the folder of the weights when it holds a config.json written for the same model."""
    from zoo_core import get_catalog

    run: dict[str, Any] = {}
    config = weights.parent / "config.json"
    if config.is_file():
        try:
            run = json.loads(config.read_text())
        except (OSError, ValueError):
            run = {}
        if not isinstance(run, dict) or run.get("model") != card.model:
            run = {}
    own = run.get("dataset") or card.dataset

    def canonical(name: str) -> str:
        try:
            return get_catalog().datasets.get(name).name
        except UnknownNameError:
            return name

    same = dataset is None or canonical(dataset) == canonical(own)
    if not same:
        return dataset, data_dir, {}, "DATASET given"
    run_dir = run.get("data_dir")
    options = {k: v for k, v in (run.get("dataset_kwargs") or {}).items() if k != "download"}
    if data_dir is not None:
        source = "--data-dir given"
    elif run:
        data_dir, source = (Path(run_dir) if run_dir else None), f"the run's data, {config}"
    else:
        source = "the data set the weights were trained on"
    return own, data_dir, options if run else {}, source


def _shape_kwargs(dataset: str, input_size: tuple[int, int, int], crop_pct: float = 1.0) -> dict[str, Any]:
    """Ask a data set that can resize, crop or convert its images (imagefolder) for the model's input
    shape and evaluation crop."""
    from zoo_core import get_catalog

    accepted = inspect.signature(get_catalog().datasets.get(dataset).load()).parameters
    wanted = {"image_size": tuple(input_size[1:]), "channels": input_size[0], "crop_pct": crop_pct}
    return {key: value for key, value in wanted.items() if key in accepted}


def _per_class_table(classes: list[str], accuracies: list[float], totals: list[int]) -> str:
    width = max(5, *(len(name) for name in classes))
    lines = [f"{'class':<{width}}  {'accuracy':>8}  {'images':>6}"]
    for name, accuracy, total in zip(classes, accuracies, totals, strict=True):
        shown = "-" if total == 0 else f"{accuracy:.2%}"
        lines.append(f"{name:<{width}}  {shown:>8}  {total:>6}")
    return "\n".join(lines)


def _summary(classes: list[str]) -> str:
    shown = ", ".join(classes[:4]) + (", …" if len(classes) > 4 else "")
    return f"({len(classes)}: {shown})"
