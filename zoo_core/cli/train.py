"""``zoo train DATASET MODEL``: the command line of the Trainer."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from zoo_core.cli import resume as resumption
from zoo_core.cli.common import RegistryName, setting_up, warn
from zoo_core.errors import BadInputError
from zoo_core.train.config import (
    DEFAULT_SAVE_EVERY,
    DEFAULT_STOP_SIGNALS,
    EMA_MODES,
    PADDING_MODES,
    PRECISIONS,
    SCHEDULES,
    TTA_MODES,
    TrainConfig,
)


def parse_key_values(pairs: tuple[str, ...], option: str) -> dict[str, Any]:
    """``("depth=3", "name=x")`` → ``{"depth": 3, "name": "x"}`` (values read as JSON when they parse)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadInputError(f"{option} expects KEY=VALUE, not {pair!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def split_pairs(arg: str) -> list[str]:
    """``"image=img,label=y"`` → ``["image=img", "label=y"]``: a comma starts a new pair only where a
    ``KEY=`` follows it, so a value may hold commas."""
    pairs: list[str] = []
    for part in arg.split(","):
        key = part.partition("=")[0]
        if pairs and ("=" not in part or not key.isidentifier()):
            pairs[-1] += "," + part
        else:
            pairs.append(part)
    return pairs


def parse_param_groups(specs: tuple[str, ...]) -> list[dict[str, Any]] | None:
    """``("*.norm*.bias:lr_scale=64,weight_decay_scale=0.0156",)`` → the recipe's ``param_groups`` list.

    ``optimizer=SPEC`` comes last and takes the rest of the text, its own options and commas included:
    ``"block*.conv*.weight:lr_scale=0.2,optimizer=muon:momentum=0.6,ns_steps=3"``."""
    if not specs:
        return None
    groups = []
    for spec in specs:
        pattern, _, options = spec.partition(":")
        options, has_optimizer, optimizer = options.partition("optimizer=")
        pairs = tuple(filter(None, options.split(",")))
        group = {"params": pattern, **parse_key_values(pairs, "--param-group")}
        if has_optimizer:
            group["optimizer"] = optimizer.strip()
        groups.append(group)
    return groups


def check_dataset_option(dataset: str, option: str, key: str) -> None:
    from zoo_core.catalog import get_catalog
    from zoo_core.kit.contracts import takes_keyword

    if not takes_keyword(get_catalog().datasets.get(dataset).load(), key):
        raise BadInputError(f"Dataset {dataset!r} does not take {option}")


def aug_specs(augs: tuple[str, ...]) -> list[str] | None:
    """The --aug values: None leaves them to the recipe, ``none`` alone means no augmentation at all."""
    if "none" in augs:
        if len(augs) > 1:
            raise BadInputError("--aug none trains without augmentation; it cannot be combined with others")
        return []
    return list(augs) or None


@click.command("train")
@click.argument("dataset", type=RegistryName("dataset"), required=False)
@click.argument("model", type=RegistryName("model"), required=False)
@click.option(
    "--aug",
    "augs",
    multiple=True,
    metavar="SPEC",
    help="Batch augmentation, repeatable, applied in order: NAME[:key=value,...], e.g. "
    "cutmix:alpha=1.0,p=0.5 (p: per-image probability). 'mixup|cutmix' picks one per batch; "
    "weights: 'mixup:alpha=0.2@0.3|cutmix@0.7'. Options: zoo info NAME. Default: the recipe's "
    "(zoo info MODEL); --aug none trains without any.",
)
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs (default: the data set's recipe).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Global batch size, split over ranks.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), help="Learning rate (peak, for onecycle).")
@click.option(
    "--optimizer",
    metavar="NAME[:k=v,...]",
    help="A registered optimizer (zoo list optimizers) with options (zoo info NAME): sgd, adamw, adam, "
    "rmsprop, muon, or a plugin's; e.g. muon:ns_steps=3. A recipe's parameter groups may name their own. "
    "Default: the recipe's.",
)
@click.option(
    "--momentum",
    type=click.FloatRange(0, 1),
    help="Momentum of the optimizers that take it (sgd, rmsprop, muon).",
)
@click.option("--nesterov/--no-nesterov", default=None, help="Nesterov momentum (sgd, muon).")
@click.option(
    "--schedule",
    metavar="NAME[:k=v,...]",
    help=f"Learning-rate schedule, stepped per batch: {', '.join(SCHEDULES)}. "
    "linear takes warmup (fraction of steps), start and end (multiples of --lr), e.g. "
    "'linear:warmup=0.23,start=0.2,end=0.07'.",
)
@click.option("--label-smoothing", type=click.FloatRange(0, 1, max_open=True), help="Label smoothing.")
@click.option("--weight-decay", type=click.FloatRange(min=0), help="Weight decay (not on biases and norms).")
@click.option("--crop-padding", type=click.IntRange(min=0), help="Random-crop padding in pixels (0: off).")
@click.option(
    "--padding-mode",
    type=click.Choice(PADDING_MODES),
    help="How the random crop pads: constant (zeros) or reflect (the mirrored border).",
)
@click.option("--flip/--no-flip", default=None, help="Horizontal flips.")
@click.option(
    "--alternate-flip/--random-flip",
    default=None,
    help="Alternating flip: each image mirrored every other epoch (half start mirrored), not at random.",
)
@click.option(
    "--random-resized-crop/--no-random-resized-crop",
    default=None,
    help="torchvision's RandomResizedCrop on every training image (area 8–100%, aspect 3/4–4/3), resized "
    "to the model's input (default: the recipe's; on for imagefolder's large images).",
)
@click.option(
    "--param-group",
    "param_groups",
    multiple=True,
    metavar="PATTERN:k=v,...",
    help="Settings for the parameters whose names match PATTERN (first match wins; repeatable): "
    "lr_scale, weight_decay_scale, epochs (trains only the first N epochs), and last "
    "optimizer=NAME[:k=v,...] (this group's own optimizer), e.g. '*.norm*.bias:lr_scale=64' or "
    "'block*.conv*.weight:lr_scale=0.2,optimizer=muon:momentum=0.6,ns_steps=3'.",
)
@click.option(
    "--ema",
    type=click.FloatRange(0, 1, max_open=True),
    metavar="DECAY",
    help="Evaluate and save an exponential moving average of the weights with this decay (0: off).",
)
@click.option("--ema-every", type=click.IntRange(min=1), help="Optimizer steps between average updates.")
@click.option(
    "--ema-warmup",
    type=click.FloatRange(min=0),
    metavar="POWER",
    help="Decay × (step/total)^POWER: the average forgets early weights (0: constant decay).",
)
@click.option(
    "--ema-mode",
    type=click.Choice(EMA_MODES),
    help="average: a shadow copy; lookahead: the model restarts from the average after each update.",
)
@click.option(
    "--tta",
    type=click.Choice(TTA_MODES),
    help="Test-time augmentation of the final evaluation: mirror, or mirror and 1-pixel shifts.",
)
@click.option(
    "--eval-every",
    type=click.IntRange(min=0),
    metavar="N",
    help="Evaluate on the test split every N epochs and after the last; 0: only after the last "
    "(metrics.jsonl then has val_* null for the others). Default: the recipe's (1).",
)
@click.option(
    "--data-init/--no-data-init",
    default=None,
    help="Let the model set weights from training images before the first step (init_from_data).",
)
@click.option(
    "--init",
    metavar="SOURCE",
    help="Start from weights: a run directory, a .safetensors file, a state dict (.pt/.pth, read "
    "weights-only) or 'pretrained' (the builder's own, e.g. timm/…). Tensors match by name and shape; a "
    "classifier for another class count is made anew. Fine-tune with a lower --lr (e.g. a third).",
)
@click.option(
    "--freeze-backbone",
    is_flag=True,
    help="Train only the classifier, everything else (BatchNorm statistics too) frozen: a linear probe.",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    help="auto (unless the recipe says otherwise): bf16 on a GPU that has it, else fp16 with a "
    "GradScaler; on a CPU bf16 autocast where the CPU computes it natively (AMX, AVX-512-BF16), else fp32. "
    "The choice and its reason are said on stderr; a 16-bit precision the CPU emulates is warned about.",
)
@click.option("--channels-last/--no-channels-last", default=None, help="Use the channels_last memory format.")
@click.option("--compile/--no-compile", "compile_", default=False, show_default=True, help="torch.compile.")
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of data order, augmentation, init."
)
@click.option(
    "--data-dir", type=click.Path(file_okay=False), help="Data root (default: $ZOO_DATA or ~/.cache/zoo)."
)
@click.option("--download", is_flag=True, help="Download the data set first if it has an official source.")
@click.option("--image-size", type=click.IntRange(min=8), help="Resize images (imagefolder).")
@click.option(
    "--crop-pct",
    type=click.FloatRange(0, 1, min_open=True),
    help="imagefolder: the share of each side the model sees, centred, in evaluation: images are stored "
    "at --image-size / crop-pct (default 0.875 for large images, shorter side ≥ 128; else 1).",
)
@click.option(
    "--data-mode",
    type=click.Choice(["auto", "memory", "stream"]),
    default="auto",
    show_default=True,
    help="imagefolder: hold the images in memory, stream them from disk, or let the memory plan decide "
    "from their count and size against the free memory (one line says which and why).",
)
@click.option(
    "--decode",
    type=click.Choice(["workers", "device"]),
    default="workers",
    show_default=True,
    help="imagefolder, streamed: decode JPEGs in the DataLoader workers, or have the workers only read "
    "the files and decode each batch on the training device (nvJPEG on a GPU).",
)
@click.option("--model-arg", "model_args", multiple=True, metavar="KEY=VALUE", help="Extra model keyword.")
@click.option(
    "--dataset-arg",
    "dataset_args",
    multiple=True,
    metavar="KEY=VALUE[,KEY=VALUE]",
    help="Extra data set keyword(s), e.g. hf's name=ORG/NAME, image=COL, label=COL (zoo info DATASET).",
)
@click.option(
    "--strict",
    is_flag=True,
    help="An unreadable image or damaged shard member is fatal (exit 2) instead of skipped by name.",
)
@click.option(
    "--out", type=click.Path(file_okay=False), help="Run directory (default: runs/<time>-<data>-<model>)."
)
@click.option(
    "--resume",
    metavar="DIR|auto",
    help="Continue a run from its last.pt, with its saved settings. auto: the newest unfinished run (of "
    "--out, else of DATASET MODEL under ./runs), else start one; a finished run exits 0: a job script can "
    "repeat one command.",
)
@click.option(
    "--save-every",
    default=DEFAULT_SAVE_EVERY,
    show_default=True,
    metavar="N|TIME|off",
    help="Also save the training state inside epochs: every N steps or every TIME (30s, 10m, 1h), written "
    "in the background; a kill -9 loses at most that much.",
)
@click.option(
    "--stop-signals",
    default=",".join(name.removeprefix("SIG") for name in DEFAULT_STOP_SIGNALS),
    show_default=True,
    metavar="SIG,...|none",
    help="Signals that stop the run at the next step with a save (exit 128 + the signal's number).",
)
@click.option(
    "--tensorboard/--no-tensorboard", default=True, show_default=True, help="Write TensorBoard logs."
)
@click.option(
    "--log-every",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Steps between progress updates (the only waits for the device inside an epoch).",
)
def train_command(dataset: str | None, model: str | None, augs: tuple[str, ...], **opts: Any) -> None:
    """Train MODEL on DATASET, evaluating on the test split after every epoch.

    Unset options come from the model's recipe for the data set, if it has one (zoo info MODEL), then from
    the data set's recipe (zoo info DATASET). The run directory gets config.json,
    metrics.jsonl, TensorBoard logs, last.pt (to resume), model.safetensors and best.safetensors.
    Ctrl-C, SIGTERM and SIGUSR1 save a resumable state at the next step. Running the same command again
    on its --out continues the run. Under torchrun the run is distributed (DDP); a restarted worker
    continues by itself.

    \b
    Examples:
      zoo train digits lenet
      zoo train mnist lenet --data-dir ~/data
      zoo train cifar10 resnet18 --aug cutmix:alpha=1.0 --epochs 30
      zoo train cifar10 resnet18 --aug 'mixup|cutmix' --device cuda --channels-last --compile
      zoo train --resume runs/20260101-120000-cifar10-resnet18
    """
    from zoo_core import distributed
    from zoo_core.train.periodic_save import parse_interval
    from zoo_core.train.stop import parse_signals
    from zoo_core.train.trainer import Trainer

    stop_signals = parse_signals(opts["stop_signals"])
    parse_interval(opts["save_every"])  # checked before minutes of data loading
    new = requested_config(dataset, model, augs, opts) if dataset and model else None
    resume = opts["resume"] or ("auto" if resumption.restarted_by_torchrun() and not opts["out"] else None)
    if resume == "auto":
        choice = resumption.choose_auto(opts["out"], dataset, model, new)
    elif resume:
        run_dir = Path(resume)
        if not (run_dir / "config.json").is_file():
            raise BadInputError(f"--resume {resume}: no run there (config.json not found)")
        cfg = resumption.checked_against(resumption.read_run_config(run_dir), run_dir, dataset, model)
        choice = resumption.Choice(run_dir, cfg, resume=True)
    elif new is None:
        raise click.UsageError("DATASET and MODEL are required (or --resume DIR|auto)")
    else:
        run_dir = Path(opts["out"]) if opts["out"] else resumption.default_run_dir(new)
        if any((run_dir / name).exists() for name in resumption.STATE_FILES):
            choice = resumption.choose_again(run_dir, new)
        else:
            choice = resumption.Choice(run_dir, new, resume=False)
    if choice.line and os.environ.get("RANK", "0") == "0":  # under torchrun, every rank chose the same
        click.echo(choice.line, err=True)
    if choice.finished:
        return
    cfg = choice.cfg
    if choice.resume:
        cfg.device = opts["device"] if opts["device"] != "auto" else cfg.device
        cfg.data_dir = opts["data_dir"] or cfg.data_dir
        warn_unused(choice.run_dir, new, augs, opts)
    options = dict(interactive=sys.stderr.isatty(), stop_signals=stop_signals, save_every=opts["save_every"])
    setup = setting_up(click.get_current_context())  # a first line within seconds (see setting_up)
    setup.note(f"{cfg.model} on {cfg.dataset}")
    try:
        with setup:
            trainer = Trainer(cfg, choice.run_dir, resume=choice.resume, **options)
        fit_and_report(trainer)
    finally:
        distributed.cleanup()  # leave the torchrun process group, whether the run ended or failed


def warn_unused(run_dir: Path, new: TrainConfig | None, augs: tuple[str, ...], opts: dict[str, Any]) -> None:
    """A continued run keeps its saved settings: say which of the command's were not used."""
    if opts["resume"] not in (None, "auto"):  # --resume DIR: every setting given is ignored
        ctx = click.get_current_context()
        ignored = ["--aug"] * bool(augs) + [
            f"--{name.rstrip('_').replace('_', '-')}"
            for name in opts
            if name not in resumption.RESUME_OPTIONS
            and ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE
        ]
        if ignored:
            warn(f"--resume continues {run_dir} with its saved settings; ignored: {' '.join(ignored)}")
        return
    differ = resumption.differences(new, resumption.read_run_config(run_dir)) if new else []
    if differ:  # the same command repeated with other settings: the run's own are used
        warn(f"continuing {run_dir} with its saved settings, not these: {'; '.join(differ)}")


def requested_config(dataset: str, model: str, augs: tuple[str, ...], opts: dict[str, Any]) -> TrainConfig:
    """The settings the command line gives (None where it leaves them to the recipes)."""
    dataset_kwargs = {}
    for option, key in (
        ("--image-size", "image_size"),
        ("--download", "download"),
        ("--data-mode", "data_mode"),
        ("--crop-pct", "crop_pct"),
        ("--decode", "decode"),
    ):
        if opts[key] and opts[key] not in ("auto", "workers"):
            check_dataset_option(dataset, option, key)
            dataset_kwargs[key] = opts[key]
    if opts["strict"]:
        check_dataset_option(dataset, "--strict", "strict")
        dataset_kwargs["strict"] = True
    pairs = tuple(p for arg in opts["dataset_args"] for p in split_pairs(arg))
    for key, value in parse_key_values(pairs, "--dataset-arg").items():
        check_dataset_option(dataset, f"--dataset-arg {key}", key)
        dataset_kwargs[key] = value
    cfg = TrainConfig(
        dataset=dataset,
        model=model,
        augs=aug_specs(augs),
        epochs=opts["epochs"],
        batch_size=opts["batch_size"],
        lr=opts["lr"],
        optimizer=opts["optimizer"],
        momentum=opts["momentum"],
        nesterov=opts["nesterov"],
        weight_decay=opts["weight_decay"],
        label_smoothing=opts["label_smoothing"],
        schedule=opts["schedule"],
        crop_padding=opts["crop_padding"],
        padding_mode=opts["padding_mode"],
        flip=opts["flip"],
        alternate_flip=opts["alternate_flip"],
        random_resized_crop=opts["random_resized_crop"],
        param_groups=parse_param_groups(opts["param_groups"]),
        ema=opts["ema"],
        ema_every=opts["ema_every"],
        ema_warmup=opts["ema_warmup"],
        ema_mode=opts["ema_mode"],
        tta=opts["tta"],
        eval_every=opts["eval_every"],
        data_init=opts["data_init"],
        init=opts["init"],
        freeze_backbone=opts["freeze_backbone"],
        device=opts["device"],
        precision=opts["precision"],
        channels_last=opts["channels_last"],
        compile=opts["compile_"],
        seed=opts["seed"],
        data_dir=str(Path(opts["data_dir"]).resolve()) if opts["data_dir"] else None,  # for zoo eval
        dataset_kwargs=dataset_kwargs,
        model_kwargs=parse_key_values(opts["model_args"], "--model-arg"),
        tensorboard=opts["tensorboard"],
        log_every=opts["log_every"],
    )
    return cfg


def fit_and_report(trainer: Any) -> None:
    """Run the remaining epochs (none when the run is complete) and say where the weights are."""
    if trainer.epoch >= trainer.cfg.epochs:
        click.echo(
            f"{trainer.run_dir} has already finished (epochs: {trainer.cfg.epochs}); nothing to do.", err=True
        )
        return
    metrics = trainer.fit()
    if trainer.dist.is_main:
        cfg = trainer.cfg
        click.echo(
            f"Done: {cfg.model} on {cfg.dataset}, {metrics['epoch']} epochs, "
            f"val_acc {metrics['val_acc']:.2%} (best {trainer.best_acc:.2%})"
            + (f", with TTA ({metrics['tta']}) {metrics['tta_acc']:.2%}" if "tta_acc" in metrics else "")
            + f" in {metrics['time_s']:.1f}s. "
            f"Weights: {trainer.run_dir}/best.safetensors"
        )
