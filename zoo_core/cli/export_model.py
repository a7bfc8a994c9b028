"""``zoo export-model``: a trained model as an ONNX or TorchScript file, checked against PyTorch."""

from __future__ import annotations

from pathlib import Path

import click

from zoo_core.errors import BadInputError


@click.command("export-model")
@click.argument("checkpoint", metavar="RUN_OR_CHECKPOINT", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["onnx", "torchscript"]),
    default="onnx",
    show_default=True,
    help="onnx: for onnxruntime and other ONNX runtimes; torchscript: for torch.jit.load, no Python code.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The file to write (default: model.onnx or model.pt beside the weights).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
def export_model_command(checkpoint: Path, fmt: str, output: Path | None, force: bool) -> None:
    """Export RUN_OR_CHECKPOINT (a run directory or a .safetensors file) as ONNX or TorchScript.

    The file takes a float batch N×C×H×W (any N; C, H, W as in training), normalized with the training
    mean and std, and returns the logits N×classes; ONNX names them "input" and "logits". The model card
    (model, classes, mean, std, input_size… as JSON strings, the keys of the safetensors metadata) is in the
    ONNX metadata_props, or in the TorchScript extra file zoo_card.json. Right after export the file is run
    on a batch of 16 (onnxruntime, or torch.jit.load) beside PyTorch: the largest difference of the logits
    is reported, and above 1e-3 the export fails and nothing is written. ONNX needs the extra 'export'
    (pip install 'zoo-models[export]').

    \b
    Examples:
      zoo export-model runs/20260101-120000-mnist-lenet --output lenet.onnx
      zoo export-model runs/<run>/best.safetensors --format torchscript -o model.pt
    """
    from zoo_core.model_export import SUFFIXES, export_model
    from zoo_core.train.checkpoint import resolve_checkpoint

    weights = resolve_checkpoint(checkpoint)
    output = output or weights.with_name(f"model{SUFFIXES[fmt]}")
    if output.exists() and not force:
        raise BadInputError(
            f"{output} already exists; pass --force to overwrite it or choose another --output"
        )
    click.echo(f"Exporting {weights} as {fmt} to {output} …", err=True)
    result = export_model(weights, output, fmt)
    runtime = "onnxruntime" if fmt == "onnx" else "torch.jit.load"
    click.echo(
        f"Wrote {result.path} ({result.path.stat().st_size / 1e6:.1f} MB) in {result.seconds:.1f} s; "
        f"checked with {runtime} on a batch of {result.check_batch}: max abs difference "
        f"{result.max_abs_diff:.2g} from PyTorch"
    )
