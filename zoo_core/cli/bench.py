"""``zoo bench``: images per second of registered models on a device, as a table or a report file."""

from __future__ import annotations

from pathlib import Path

import click

from zoo_core.errors import BadInputError


def _device(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from zoo_core.device import resolve_device

    try:
        return resolve_device(value)
    except BadInputError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _output(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    # checked before the benchmark runs, so a long run never ends in a refusal to write
    if value is not None and value.suffix not in (".md", ".json"):
        raise click.BadParameter(f"{value} must end in .md or .json", ctx, param)
    return value


@click.command("bench")
@click.argument("patterns", nargs=-1, metavar="[PATTERN]...")
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    callback=_device,
    help="auto: CUDA when available, else CPU.",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
    default="auto",
    show_default=True,
    help="Autocast dtype; auto: bf16 (or fp16) on CUDA, fp32 on CPU.",
)
@click.option("--mode", type=click.Choice(["infer", "train", "both"]), default="both", show_default=True)
@click.option(
    "--runs", type=click.IntRange(min=1), default=10, show_default=True, help="Timed steps (median)."
)
@click.option(
    "--warmup", type=click.IntRange(min=0), default=3, show_default=True, help="Untimed steps first."
)
@click.option("--channels-last", is_flag=True, help="Model and input in channels_last memory format.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    callback=_output,
    help="Also write the report to FILE: .md (markdown table) or .json.",
)
def bench(
    patterns: tuple[str, ...],
    device: str,
    batch_size: int,
    precision: str,
    mode: str,
    runs: int,
    warmup: int,
    channels_last: bool,
    output: Path | None,
) -> None:
    """Benchmark model speed: images per second for inference and training steps.

    PATTERN selects models by shell-style name patterns ('resnet*'); without one, every registered model
    except namespace ones (timm/...), which are benchmarked only when named ('timm/resnet10t').
    Each model runs at its registered input size and class count on random input: WARMUP untimed steps,
    then RUNS timed ones; img/s comes from the median step. A CUDA out-of-memory error retries at half the
    batch; other failures show in the table's notes. The table also gives parameters and forward GFLOPs
    at 32×32.

    \b
    Examples:
      zoo bench resnet18 lenet --device cpu --runs 5
      zoo bench 'vgg*' --device cuda --precision bf16 --channels-last --output vgg.md
    """
    from zoo_core.bench import format_markdown, make_report, run_bench, write_report

    modes = ("infer", "train") if mode == "both" else (mode,)
    settings = dict(
        device=device,
        batch_size=batch_size,
        precision=precision,
        channels_last=channels_last,
        warmup=warmup,
        runs=runs,
    )
    rows = run_bench(patterns, modes=modes, **settings)
    report = make_report(rows, **settings)
    click.echo(format_markdown(report), nl=False)
    if output is not None:
        write_report(report, output)
        click.echo(f"wrote {output}", err=True)
