"""The ``zoo`` command line. Built-in commands are imported only when run, so ``zoo --help`` stays fast
and never imports torch; plugins may add commands through the ``register_commands`` hook."""

from __future__ import annotations

import errno
import os
import sys
from typing import Any

import click

from zoo_core.errors import ZooError
from zoo_core.version import __version__

# command name → "module:attribute"; imported on first use
BUILTIN_COMMANDS = {
    "list": "zoo_core.cli.listing:list_command",
    "plugins": "zoo_core.cli.listing:plugins_command",
    "info": "zoo_core.cli.listing:info_command",
    "check": "zoo_core.cli.check:check_command",
    "train": "zoo_core.cli.train:train_command",
    "eval": "zoo_core.cli.eval:eval_command",
    "predict": "zoo_core.cli.predict:predict_command",
    "bench": "zoo_core.cli.bench:bench",
    "export": "zoo_core.cli.export:export_command",
    "new-plugin": "zoo_core.cli.new_plugin:new_plugin_command",
    "export-model": "zoo_core.cli.export_model:export_model_command",
}
SHORT_HELP = {
    "list": "List registered models, data sets, augmentations and optimizers.",
    "plugins": "Show installed plugins, their hooks and errors.",
    "info": "Show everything known about one registered name.",
    "check": "Run conformance checks on one plugin's entries.",
    "train": "Train MODEL on DATASET.",
    "eval": "Evaluate a checkpoint: top-1/top-5, per class, confusion matrix.",
    "predict": "Classify image files with a checkpoint.",
    "bench": "Benchmark model speed (img/s, MFU), or with --accuracy what models reach.",
    "export": "Write a data set as an ImageFolder tree of PNG files.",
    "new-plugin": "Create a plugin package skeleton that passes zoo check.",
    "export-model": "Write a trained model as ONNX or TorchScript, checked against PyTorch.",
}


# an OSError with one of these errnos means the path given cannot be one (bad input, exit 2); any other
# (permission, a full disk, I/O) is a failure of the machine (exit 1)
BAD_PATH_ERRNOS = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.ELOOP, errno.EINVAL}


def _debug() -> bool:
    return os.environ.get("ZOO_DEBUG", "") not in {"", "0"}


class ZooGroup(click.Group):
    """A group that imports built-in commands lazily, adds plugin commands, and turns errors into one
    line on stderr and an exit code (2: bad input, 1: runtime failure, 128 + N: stopped by signal N)."""

    _plugins_added = False

    def _add_plugin_commands(self) -> None:
        if self._plugins_added:
            return
        self._plugins_added = True
        from zoo_core.catalog import get_catalog

        get_catalog().manager.add_commands(self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_plugin_commands()
        return sorted({*BUILTIN_COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in BUILTIN_COMMANDS:
            return _load(BUILTIN_COMMANDS[name])
        self._add_plugin_commands()
        return self.commands.get(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # short help without importing every command module (and torch with it)
        self._add_plugin_commands()
        rows = [(name, SHORT_HELP[name]) for name in sorted(BUILTIN_COMMANDS)]
        rows += [(name, cmd.get_short_help_str(60)) for name, cmd in sorted(self.commands.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def main(
        self, args: Any = None, prog_name: str | None = None, standalone_mode: bool = True, **extra: Any
    ) -> Any:
        try:
            result = super().main(args, prog_name or "zoo", standalone_mode=False, **extra)
            code = result if isinstance(result, int) and not isinstance(result, bool) else 0
        except click.exceptions.Abort:
            click.echo("zoo: aborted", err=True)
            code = 130
        except click.ClickException as exc:
            click.echo(f"Error: {' '.join(exc.format_message().split())}", err=True)
            code = exc.exit_code
        except ZooError as exc:
            if _debug():
                raise
            if str(exc):  # empty on the other ranks of a distributed run: rank 0 says it once
                click.echo(f"Error: {' '.join(str(exc).split())}", err=True)
            code = exc.exit_code
        except KeyboardInterrupt:
            click.echo("zoo: interrupted", err=True)
            code = 130
        except OSError as exc:  # a path that cannot be used: too long, missing, a folder, unwritable...
            if _debug():
                raise
            where = f" ({str(exc.filename)[:300]})" if exc.filename else ""
            click.echo(f"Error: {' '.join((exc.strerror or str(exc)).split())}{where}", err=True)
            code = 2 if exc.errno in BAD_PATH_ERRNOS else 1
        except Exception as exc:
            if _debug():
                raise
            message = " ".join(str(exc).split())
            click.echo(
                f"Error: unexpected {type(exc).__name__}: {message} (run with ZOO_DEBUG=1 for the traceback)",
                err=True,
            )
            code = 1
        if standalone_mode:
            sys.exit(code)
        return code


def _load(target: str) -> click.Command:
    import importlib

    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="zoo", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """zoo: train any registered model on any registered data set with any registered augmentation.

    \b
    Examples:
      zoo list                          everything installed
      zoo list models 'resnet*'         models matching a pattern
      zoo train digits lenet            the embedded default, no download
      zoo train cifar10 resnet18 --aug cutmix --data-dir DATA
      zoo eval runs/<run> ; zoo predict runs/<run> image.png
      zoo export-model runs/<run> --output model.onnx

    Plugins (pip packages with a 'zoo.plugins' entry point) add models, data sets, augmentations and
    commands; see `zoo plugins`. Set ZOO_DEBUG=1 to see tracebacks.
    """
    if ctx.invoked_subcommand == "train":  # before its arguments are checked: that can take seconds
        from zoo_core.cli.common import setting_up

        setting_up(ctx)


def main() -> None:
    cli.main(prog_name="zoo")
