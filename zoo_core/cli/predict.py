"""``zoo predict``: classify image files with a checkpoint."""

from __future__ import annotations

from pathlib import Path

import click

from zoo_core.cli.common import echo_json
from zoo_core.device import resolve_device
from zoo_core.errors import BadInputError

CHUNK = 64  # images read and classified together: bounded memory for any number of files


@click.command("predict")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.argument("images", metavar="IMAGE...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--top-k",
    "-k",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Classes to show per image (at most the model's number of classes).",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of text.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
def predict_command(
    checkpoint: Path, images: tuple[Path, ...], top_k: int, as_json: bool, device: str
) -> None:
    """Classify IMAGE files with CHECKPOINT (a run directory or a .safetensors file).

    Any image PIL reads works, in any size or mode: it is converted to the model's channels, resized to
    its input size (a model trained ImageNet-style: shorter side to size / crop_pct, then the centre
    crop, as its evaluation did) and normalized as in training, all from what the checkpoint stores.

    \b
    Examples:
      zoo predict runs/20250101-120000-mnist-lenet digit.png
      zoo predict model.safetensors *.jpg --top-k 3 --json
    """
    import torch

    from zoo_core.images import read_images
    from zoo_core.train.checkpoint import load_model, resolve_checkpoint

    for image in images:  # before the model loads: a typo should fail fast
        if not image.is_file():
            raise BadInputError(f"No such image file: {image}")
    device = resolve_device(device)
    model, card = load_model(resolve_checkpoint(checkpoint), device=device)
    k = min(top_k, card.num_classes)
    results = []
    for start in range(0, len(images), CHUNK):
        chunk = images[start : start + CHUNK]
        batch = read_images(
            chunk,
            input_size=card.input_size,
            mean=card.mean,
            std=card.std,
            device=device,
            crop_pct=card.crop_pct,
        )
        with torch.no_grad():
            probs = model(batch).float().softmax(dim=1)
        top_probs, top_indices = (t.tolist() for t in probs.topk(k, dim=1))
        for path, row_probs, row_indices in zip(chunk, top_probs, top_indices, strict=True):
            top = [
                {"index": index, "class": card.classes[index], "prob": prob}
                for index, prob in zip(row_indices, row_probs, strict=True)
            ]
            results.append({"file": str(path), "top": top})
    if as_json:
        echo_json(results)
        return
    width = max(len(entry["class"]) for result in results for entry in result["top"])
    for result in results:
        click.echo(result["file"])
        for rank, entry in enumerate(result["top"], start=1):
            click.echo(f"  {rank}. {entry['class']:<{width}}  {entry['prob']:7.2%}")
