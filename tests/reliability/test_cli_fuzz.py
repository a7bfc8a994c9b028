"""The command line under seeded random and hostile argument vectors: every built-in command and every one of
its options (taken from the commands themselves), with unknown names, negative, huge and NaN numbers, bad and
unwritable paths, directories for files, unicode, empty and very long strings, shell metacharacters. Each
vector must exit 0, 1 or 2 with no traceback, in time, and a failure must be one 'Error:' line that did not
come through the catch-all for unexpected exceptions.

Vectors are run in-process through ``cli.main`` (what the ``zoo`` script calls), so they cost no interpreter
start; a few also go through the real entry point in a fresh process. Vectors that would start real work
are steered away from it: `train` and `export` always get a data directory that does not exist (digits, which
needs none, is only trained in the fixed vectors, one epoch), `bench` and `check` get patterns and plugin
names that match nothing."""

from __future__ import annotations

import random
from pathlib import Path

import click
import pytest
from reliability_helpers import invoke, run_entry_point

from zoo_core.cli import BUILTIN_COMMANDS, _load

AREA = "command line"
SEED = 1126
RANDOM_VECTORS = 240
LONG = "x" * 5000

INTS = ["0", "-1", "1", "3", "-999999999999", "18446744073709551617", "1e3", "nan", "", " 2", "0x10", "２"]
FLOATS = ["0", "-0.0", "-1", "nan", "NaN", "inf", "-inf", "1e309", "1e-400", "", "0.5", "1", "1e12", "½"]
TEXTS = [
    "",
    " ",
    "bogus",
    "ünïcødé-名前-🦓",
    LONG,
    "--help",
    "-",
    "--",
    "../../etc/passwd",
    "%s%n%x",
    "{}[]()",
    "*",
    "a=b=c",
    "\t\n",
]


class Pools:
    """Values for positional arguments and paths, built in a temporary folder."""

    def __init__(self, tmp: Path, weights: Path, canary: Path) -> None:
        self.tmp = tmp
        self.canary = canary
        (tmp / "empty-dir").mkdir()
        (tmp / "text.txt").write_text("not a zoo file\n")
        (tmp / "runlike").mkdir()
        (tmp / "runlike" / "config.json").write_text("{}")
        (tmp / "ünïcødé dir").mkdir()
        self.missing = str(tmp / "does-not-exist" / "data")
        self.weights = str(weights)
        from PIL import Image

        self.image = str(tmp / "digit.png")
        Image.new("L", (12, 9), 200).save(self.image)
        self.paths = [
            self.missing,
            str(tmp / "empty-dir"),
            str(tmp / "text.txt"),
            str(tmp / "runlike"),
            str(tmp / "ünïcødé dir" / "out"),
            "/proc/zoo-unwritable/x",
            "/dev/null",
            "/",
            "",
            str(tmp / LONG[:300]),
            str(tmp / ("d" * 300) / "x"),
            f"$(touch {canary})",
            f"`touch {canary}`;touch {canary}",
        ]

    def value(self, param: click.Parameter, rng: random.Random) -> str:
        kind = param.type
        if isinstance(kind, click.Choice):
            return rng.choice([*map(str, kind.choices), "bogus", "", "CPU", LONG[:100]])
        if isinstance(kind, click.types.IntParamType):
            return rng.choice(INTS)
        if isinstance(kind, click.types.FloatParamType):
            return rng.choice(FLOATS)
        if (
            isinstance(kind, click.Path)
            or "dir" in param.name
            or param.name in {"out", "output", "plot", "init"}
        ):
            return rng.choice(self.paths)
        return rng.choice([*TEXTS, *self.paths[:4]])


def commands() -> dict[str, click.Command]:
    return {name: _load(target) for name, target in BUILTIN_COMMANDS.items()}


def options_of(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option) and "--help" not in p.opts]


# positional arguments that reach each command's validation without starting long work
def positionals(name: str, pools: Pools, rng: random.Random) -> list[str]:
    pick = rng.choice
    bad_names = ["bogus", "", "ünïcødé", LONG[:400], "CIFAR10", "timm", "resnet18 ", "-x"]
    if name == "train":
        return [
            pick(["cifar10", "mnist", "imagefolder", *bad_names]),
            pick(["lenet", "resnet18", *bad_names]),
        ][: pick([0, 1, 2, 2, 2])]
    if name == "list":
        return rng.sample(
            ["models", "datasets", "augmentations", "bogus", "res*", "[", "", "*", "ü*"], pick([0, 1, 2])
        )
    if name == "info":
        return [pick(["lenet", "cifar10", "cutmix", "digits", *bad_names])]
    if name == "check":
        return [pick(["builtin.modelz", "nope", *bad_names])]
    if name == "eval":
        return [pick([pools.weights, *pools.paths])] + (
            [pick(["digits", "cifar10", *bad_names])] if pick([0, 1]) else []
        )
    if name == "predict":
        return [
            pick([pools.weights, *pools.paths]),
            *rng.sample([pools.image, *pools.paths], pick([0, 1, 2])),
        ]
    if name == "bench":
        return [pick(["zzz*", "", "nonexistent", "ünïcødé", LONG[:300], "[", "lenett"])]
    if name == "export":
        return [pick(["cifar10", "mnist", *bad_names]), pick(pools.paths)][: pick([1, 2, 2])]
    if name == "new-plugin":
        return [pick(["foo", "Foo Bar", "../escape", "-x", "builtin", "ünï", "", LONG[:300], "a" * 60])]
    if name == "export-model":
        return [pick(pools.paths)]
    return []


def make_vectors(pools: Pools, count: int, seed: int = SEED) -> list[list[str]]:
    """First one vector per option of every command (coverage), then ``count`` random ones."""
    rng = random.Random(seed)
    table = commands()
    vectors: list[list[str]] = []

    def vector(name: str, chosen: list[click.Option]) -> list[str]:
        argv = [name, *positionals(name, pools, rng)]
        for option in chosen:
            flag = rng.choice(option.opts + option.secondary_opts)
            argv += [flag] if option.is_flag or option.count else [flag, pools.value(option, rng)]
        if rng.random() < 0.15:
            argv.insert(
                rng.randrange(1, len(argv) + 1), rng.choice(["--bogus", "-z", "--epochs", "--no-such=1"])
            )
        if name in ("train", "export"):
            argv += ["--data-dir", pools.missing]
        if name == "new-plugin" and "--dir" not in argv:
            argv += ["--dir", str(pools.tmp / "plugins")]
        return argv

    for name, command in table.items():
        for option in options_of(command):
            vectors.append(vector(name, [option]))
    names = list(table)
    for _ in range(count):
        name = rng.choice(names)
        options = options_of(table[name])
        vectors.append(vector(name, rng.sample(options, min(len(options), rng.choice([0, 1, 2, 3, 4])))))
    # no command, unknown commands, global options
    vectors += [
        [],
        ["bogus"],
        ["ünïcødé"],
        [LONG],
        ["--version"],
        ["-h"],
        ["--bogus"],
        ["list", "--json", "--json"],
    ]
    return vectors


FIXED = [  # ordinary use, expected to succeed (exit 0) next to the hostile vectors
    ["list"],
    ["list", "models", "res*", "--json"],
    ["plugins"],
    ["info", "cutmix"],
    ["train", "--help"],
]


def test_every_option_of_every_command_is_covered(tmp_path: Path, weights: Path) -> None:
    pools = Pools(tmp_path, weights, tmp_path / "CANARY")
    vectors = make_vectors(pools, 0)
    for name, command in commands().items():
        for option in options_of(command):
            assert any(v[0] == name and set(option.opts + option.secondary_opts) & set(v) for v in vectors), (
                name,
                option.opts,
            )


def test_random_and_hostile_argument_vectors_exit_cleanly(
    tmp_path: Path, weights: Path, ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    canary = tmp_path / "CANARY"
    pools = Pools(tmp_path, weights, canary)
    vectors = make_vectors(pools, RANDOM_VECTORS)
    monkeypatch.chdir(tmp_path)  # `--resume auto` and default run directories look under ./runs
    env = {  # no data, no cache, no network: a vector never reaches real data or a download
        "ZOO_DATA": pools.missing,
        "ZOO_CACHE": str(tmp_path / "cache"),
        "ZOO_CIFAR10_URL": "file:///nonexistent/zoo/cifar-10-python.tar.gz",
        "ZOO_MNIST_URL": "file:///nonexistent/zoo/mnist/",
    }
    failures = []
    for argv in [*FIXED, *vectors]:
        outcome = invoke(argv, timeout=240, env=env)
        codes = (0,) if argv in FIXED else (0, 1, 2)
        problems = outcome.problems(codes=codes)
        shown = " ".join(a if len(a) < 60 else a[:20] + f"…({len(a)} chars)" for a in argv)
        command = argv[0] if argv and argv[0] in BUILTIN_COMMANDS else "(no or unknown command)"
        ledger.record(
            AREA, f"zoo {command}", shown, not problems, outcome.summary() + "; " + "; ".join(problems)
        )
        if problems:
            failures.append((shown, problems))
    if canary.exists():
        failures.append(("shell metacharacters", ["a value was run by a shell"]))
    assert not failures, f"{len(failures)} vectors broke the rules: {failures[:10]}"


ENTRY_POINT_VECTORS = [
    (["bogus-command"], 2),
    (["list", "--json"], 0),
    (["train", "cifar10", "lenet", "--lr", "nan", "--data-dir", "/nonexistent/zoo"], 2),
    (["info", LONG], 2),
]


def test_the_real_entry_point_agrees(ledger) -> None:
    """Some vectors through `python -m zoo_core` in a fresh process: same codes, one line, no traceback."""
    failures = []
    for argv, code in ENTRY_POINT_VECTORS:
        outcome = run_entry_point(argv, timeout=600)
        problems = outcome.problems(codes=(code,))
        shown = " ".join(a if len(a) < 60 else a[:20] + f"…({len(a)} chars)" for a in argv)
        ledger.record(AREA, "zoo entry point (fresh process)", shown, not problems, outcome.summary())
        if problems:
            failures.append((shown, problems))
    assert not failures, failures
