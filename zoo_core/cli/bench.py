"""``zoo bench``: the speed (img/s, TFLOP/s, MFU) or, with ``--accuracy``, the accuracy and training time of
registered models on a device, as a table printed row by row and optionally a report file and a chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from zoo_core.cli.common import RegistryName, warn
from zoo_core.errors import BadInputError

REPORT_SUFFIXES = (".md", ".json", ".csv")
DEFAULT_BATCH = 64  # of the throughput benchmark; accuracy runs take the recipe's
# options that only an accuracy run uses, and those that only a throughput run uses
ACCURACY_ONLY = ("dataset", "epochs", "data_dir", "seed", "targets", "keep_runs", "plot")
THROUGHPUT_ONLY = ("mode", "runs", "warmup")


def _device(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from zoo_core.device import resolve_device

    try:
        return resolve_device(value)
    except BadInputError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _output(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    # checked before the benchmark runs, so a long run never ends in a refusal to write
    if value is not None and value.suffix not in REPORT_SUFFIXES:
        raise click.BadParameter(f"{value} must end in .md, .json or .csv", ctx, param)
    return value


def _plot(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    if value is None:
        return None
    if value.suffix.lower() != ".png":
        raise click.BadParameter(f"{value} must end in .png", ctx, param)
    from zoo_core.bench.plot import require_matplotlib

    try:
        require_matplotlib()
    except BadInputError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None
    return value


def _check_option_mix(ctx: click.Context, accuracy: bool) -> None:
    from click.core import ParameterSource

    wrong = THROUGHPUT_ONLY if accuracy else ACCURACY_ONLY
    given = [n for n in wrong if ctx.get_parameter_source(n) not in (None, ParameterSource.DEFAULT)]
    if given:
        option = "--" + given[0].replace("_", "-").replace("targets", "target")
        if accuracy:
            raise click.UsageError(f"{option} applies to the throughput benchmark, not to --accuracy")
        raise click.UsageError(f"{option} needs --accuracy")


@click.command("bench")
@click.argument("patterns", nargs=-1, metavar="[PATTERN]...")
@click.option(
    "--accuracy",
    is_flag=True,
    help="Train each model with zoo's Trainer and evaluate it, instead of timing steps on random input.",
)
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    callback=_device,
    help="auto: CUDA when available, else CPU.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help=f"Throughput: images per step [default: {DEFAULT_BATCH}]. Accuracy: the global training batch "
    "[default: the recipe's].",
)
@click.option(
    "--precision",
    type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
    default="auto",
    show_default=True,
    help="Autocast dtype; auto: bf16 (or fp16) on CUDA; on a CPU bf16 where it is native (AMX, "
    "AVX-512-BF16), else fp32. The choice and its reason are said on stderr.",
)
@click.option("--channels-last", is_flag=True, help="Model and input in channels_last memory format.")
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the model (compile time not timed).")
@click.option(
    "--mode",
    type=click.Choice(["infer", "train", "both"]),
    default="both",
    show_default=True,
    help="Throughput: which steps to time.",
)
@click.option(
    "--runs",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Throughput: timed steps (median).",
)
@click.option(
    "--warmup",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Throughput: untimed steps first.",
)
@click.option(
    "--dataset",
    type=RegistryName("dataset"),
    default=None,
    help="Accuracy: train and test on this data set [default: each model's default_dataset].",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=None,
    help="Accuracy: epochs per model [default: the recipe's].",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Accuracy: the data root (else $ZOO_DATA, else ~/.cache/zoo).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Accuracy: the training seed.")
@click.option(
    "--target",
    "targets",
    type=click.FloatRange(0, 1, min_open=True),
    multiple=True,
    metavar="ACC",
    help="Accuracy: report the training time to reach this test top-1 (a fraction; repeatable) "
    "[default: 0.9, 0.94, 0.99].",
)
@click.option(
    "--keep-runs",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Accuracy: keep each model's run directory (checkpoints, metrics.jsonl) under DIR "
    "[default: temporary, deleted].",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    callback=_output,
    help="Also write the report to FILE: .md (the table), .json or .csv; rewritten as each row completes.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    callback=_plot,
    help="Accuracy: draw test accuracy against training time, one curve per model, to FILE.png "
    "(needs matplotlib: pip install 'zoo-models[plot]').",
)
@click.pass_context
def bench(
    ctx: click.Context,
    patterns: tuple[str, ...],
    accuracy: bool,
    device: str,
    batch_size: int | None,
    precision: str,
    channels_last: bool,
    compile_: bool,
    mode: str,
    runs: int,
    warmup: int,
    dataset: str | None,
    epochs: int | None,
    data_dir: Path | None,
    seed: int,
    targets: tuple[float, ...],
    keep_runs: Path | None,
    output: Path | None,
    plot: Path | None,
) -> None:
    """Benchmark models: speed (img/s, TFLOP/s, MFU), or with --accuracy what they reach and how fast.

    PATTERN selects models by shell-style name patterns ('resnet*'); without one, every registered model
    (third-party plugins' included) except namespace ones (timm/...), which run only when named.

    Throughput (the default): each model runs at its registered input size and class count on random
    input: WARMUP untimed steps, then RUNS timed ones; img/s comes from the median step. The table also
    gives parameters, forward GFLOPs at 32×32, the TFLOP/s reached and, on an H100, H200 or A100, the share
    of the GPU's dense peak (MFU). A CUDA out-of-memory error retries at half the batch.

    Accuracy (--accuracy): each model is trained by zoo's Trainer on --dataset with the data set's recipe
    (--epochs and --batch-size override it) and evaluated on the test split after every epoch. A row
    gives top-1/top-5, training seconds, img/s and the seconds to reach each --target accuracy.

    A model that fails gets its error in the table and the others go on; rows print as they complete.

    \b
    Examples:
      zoo bench resnet18 lenet --device cpu --runs 5
      zoo bench --device cuda --precision bf16 --channels-last --compile --batch-size 512 --output t.md
      zoo bench --accuracy --dataset digits --epochs 2 --output acc.md --plot acc.png
      zoo bench lenet --accuracy --dataset mnist --data-dir DATA --target 0.99
    """
    _check_option_mix(ctx, accuracy)
    from zoo_core.bench import report as rep

    rows: list[dict[str, Any]] = []
    document = dict(machine=rep.machine_info(device), command=_command_line())
    if accuracy:
        from zoo_core.bench.accuracy import DEFAULT_TARGETS, run_accuracy

        targets = targets or DEFAULT_TARGETS
        given = ctx.get_parameter_source  # unset: the recipe decides, as in zoo train (fastnet: bf16)
        settings: dict[str, Any] = dict(
            device=device,
            dataset=dataset,
            epochs=epochs,
            batch_size=batch_size,
            precision=precision if given("precision") is click.core.ParameterSource.COMMANDLINE else None,
            channels_last=channels_last or None,
            compile=compile_,
            seed=seed,
            targets=targets,
        )

        def make() -> dict[str, Any]:
            return rep.make_accuracy_report(rows, **settings, **document)

    else:
        from zoo_core.bench.throughput import run_bench, select_models
        from zoo_core.device import choose_precision, probe_hardware

        choice = choose_precision(precision, probe_hardware(device))
        select_models(patterns)  # a pattern matching nothing fails before the header is printed
        settings = dict(
            device=device,
            batch_size=batch_size or DEFAULT_BATCH,
            precision=precision,
            channels_last=channels_last,
            compile=compile_,
            warmup=warmup,
            runs=runs,
        )

        def make() -> dict[str, Any]:
            return rep.make_report(rows, **settings, **document)

    modes = ("infer", "train") if mode == "both" else (mode,)
    if not accuracy:  # an accuracy run's trainers say it themselves, model by model
        click.echo(choice.line, err=True)
        if choice.warning:
            warn(choice.warning)
    click.echo("\n".join(rep.markdown_header(make())))

    def on_row(row: dict[str, Any]) -> None:
        rows.append(row)
        report = make()
        done = [r for r in rows if r["model"] == row["model"]]
        if accuracy or len(done) == len(modes):  # a throughput line holds all of a model's modes
            for line in rep.markdown_rows(report, done if not accuracy else [row]):
                click.echo(line)
        if output is not None:
            rep.write_report(report, output)
        if plot is not None and any(r.get("curve") for r in rows):
            from zoo_core.bench.plot import plot_accuracy

            plot_accuracy(rows, plot, title=_plot_title(report))

    if accuracy:
        run_accuracy(
            patterns,
            data_dir=data_dir,
            runs_dir=keep_runs,
            on_row=on_row,
            **settings,
        )
    else:
        run_bench(patterns, modes=modes, on_row=on_row, **settings)
    if output is not None:
        click.echo(f"wrote {output}", err=True)
    if plot is not None:
        if any(r.get("curve") for r in rows):
            click.echo(f"wrote {plot}", err=True)
        else:
            click.echo("zoo: warning: no model finished an epoch; no plot drawn", err=True)


def _command_line() -> str:
    import shlex
    import sys

    return "zoo " + " ".join(shlex.quote(arg) for arg in sys.argv[1:])


def _plot_title(report: dict[str, Any]) -> str:
    settings, machine = report["settings"], report["machine"]
    datasets = sorted({r["dataset"] for r in report["results"] if r.get("dataset")})
    where = machine["gpu"] or f"{machine['cpu']}, {machine.get('cpu_cores')} cores"
    return f"zoo bench --accuracy: {', '.join(datasets)} on {settings['device']} ({where})"
