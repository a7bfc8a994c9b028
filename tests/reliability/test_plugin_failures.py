"""Broken plugins installed next to good ones: an import error, a raising hook, duplicate names (of another
plugin's and of built-in entries), an invalid name, metadata of the wrong types, builders that return the
wrong type. Each must be reported (`zoo plugins`, a one-line warning in `zoo list`, one error line when the
broken entry is used), and none may break `zoo list`, `zoo info` or `zoo train` of the other entries.

The conftest's ``plugin_site`` (pip-installed: tiny, brokenimport, raiser, clash) is used as it is; the other
broken plugins are installed here as plain distributions (a ``.dist-info`` with METADATA and
entry_points.txt, which is all importlib.metadata reads)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from reliability_helpers import invoke, run_entry_point

import zoo_core

AREA = "plugins"

MORE_PLUGINS = {
    "badmeta": '''
        """Metadata of the wrong types on every kind of entry."""
        from zoo_core import hookimpl

        @hookimpl
        def register_models(registry):
            registry.register("badmetanet", "zoo_plugins.models.lenet:lenet", summary="wrong metadata types",
                              input_size="huge", num_classes="ten", params="many", family=42,
                              default_dataset=["digits"])

        @hookimpl
        def register_datasets(registry):
            registry.register("badmetaset", "zoo_badmeta:nothing", summary="wrong metadata types",
                              splits=5, num_classes=-3, input_size=(0,), mean="grey", recipe=[1, 2])

        @hookimpl
        def register_augmentations(registry):
            registry.register("badmetaaug", "zoo_badmeta:nothing", level=7, soft_targets="maybe",
                              options="none")
    ''',
    "wrongtype": '''
        """Builders that return something other than what their kind promises."""
        from zoo_core import hookimpl

        def a_string(**kwargs):
            return "not a module"

        def a_dict(**kwargs):
            return {"weight": 1}

        @hookimpl
        def register_models(registry):
            registry.register("wrongnet", a_string, summary="returns a str", input_size=(1, 32, 32),
                              num_classes=10, family="wrong")
            registry.register("dictnet", a_dict, summary="returns a dict", input_size=(1, 32, 32),
                              num_classes=10, family="wrong")

        @hookimpl
        def register_datasets(registry):
            registry.register("wrongset", a_string, summary="returns a str", num_classes=10,
                              input_size=(1, 32, 32), splits=("train", "test"))
    ''',
    "dupe": '''
        """Takes built-in names: a model, a data set and an augmentation; and one name of its own."""
        from zoo_core import hookimpl

        @hookimpl
        def register_models(registry):
            registry.register("lenet", "zoo_dupe:impostor", summary="tries to take lenet")
            registry.register("dupenet", "zoo_plugins.models.lenet:lenet", summary="a name of its own",
                              input_size=(1, 32, 32), num_classes=10, family="dupe")

        @hookimpl
        def register_datasets(registry):
            registry.register("digits", "zoo_dupe:impostor", summary="tries to take digits")

        @hookimpl
        def register_augmentations(registry):
            registry.register("cutmix", "zoo_dupe:impostor", summary="tries to take cutmix")

        def impostor(**kwargs):
            raise AssertionError("the impostor must never be built")
    ''',
    "badname": '''
        """An invalid name in the middle of good ones: the hook raises, its entries are rolled back."""
        from zoo_core import hookimpl

        @hookimpl
        def register_models(registry):
            registry.register("goodname", "zoo_plugins.models.lenet:lenet", summary="rolled back")
            registry.register("Bad Name!", "zoo_plugins.models.lenet:lenet")
    ''',
    "nothooks": '''
        """No hook implementations at all, and a module attribute that shadows a hook name."""
        register_models = "not a function"
    ''',
}


def install_as_distribution(site: Path, name: str, source: str) -> None:
    module = site / f"zoo_{name}"
    module.mkdir(parents=True)
    (module / "__init__.py").write_text(textwrap.dedent(source))
    info = site / f"zoo_{name}-0.9.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: zoo-{name}\nVersion: 0.9\n")
    (info / "entry_points.txt").write_text(f"[zoo.plugins]\n{name} = zoo_{name}\n")


@pytest.fixture(scope="module")
def more_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("more-plugins")
    for name, source in MORE_PLUGINS.items():
        install_as_distribution(site, name, source)
    return site


@pytest.fixture
def broken_world(plugin_site: Path, more_site: Path, monkeypatch: pytest.MonkeyPatch):
    """This process's catalog with every test plugin installed, good and broken; restored afterwards."""
    monkeypatch.syspath_prepend(str(plugin_site))
    monkeypatch.syspath_prepend(str(more_site))
    for name in ("ZOO_LOAD_PLUGINS", "ZOO_DISABLE_PLUGINS", "ZOO_STRICT_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    zoo_core.reset_catalog()
    yield zoo_core.get_catalog()
    monkeypatch.undo()
    zoo_core.reset_catalog()


EXPECTED_FAILURES = {  # plugin -> the stage its failure must be reported at
    "brokenimport": "import",
    "raiser": "register_models",
    "clash": "duplicate",
    "dupe": "duplicate",
    "badname": "register_models",
}


def test_each_broken_plugin_is_reported_by_zoo_plugins(broken_world, ledger) -> None:
    outcome = invoke(["plugins", "--json"])
    assert outcome.code == 0, outcome.err
    report = {p["name"]: p for p in json.loads(outcome.out)}
    failures = []
    for plugin, stage in EXPECTED_FAILURES.items():
        errors = report.get(plugin, {}).get("errors", [])
        held = any(e["stage"] == stage for e in errors)
        ledger.record(AREA, "reported by zoo plugins", f"{plugin}: {stage}", held, json.dumps(errors)[:300])
        if not held:
            failures.append((plugin, errors))
    dupes = [e["message"] for e in report["dupe"]["errors"]]
    held = len(dupes) == 3 and all("builtin." in m for m in dupes)
    ledger.record(
        AREA, "duplicate names", "dupe takes lenet, digits and cutmix: 3 errors naming both", held, dupes
    )
    for plugin in ("tiny", "badmeta", "wrongtype", "nothooks"):
        ledger.record(AREA, "good or lazily-broken plugins load", plugin, report[plugin]["status"] == "ok")
    assert not failures and held
    text = invoke(["plugins"])
    assert text.code == 0 and "brokenimport: import:" in text.out


def test_zoo_list_shows_every_good_entry_and_warns_in_one_line(broken_world, ledger) -> None:
    failures = []
    for args in (
        ["list"],
        ["list", "models"],
        ["list", "datasets"],
        ["list", "augmentations"],
        ["list", "--json"],
    ):
        outcome = invoke(args)
        problems = outcome.problems(codes=(0,))
        warnings = [line for line in outcome.err.splitlines() if line.strip()]
        if len(warnings) != 1 or "plugin(s) had errors" not in warnings[0]:
            problems.append(f"stderr is not one warning line: {outcome.err!r}")
        listed = outcome.out
        expected = {
            "list": ["lenet", "tinynet", "clashnet", "dupenet", "badmetanet", "digits", "cutmix"]
        }.get(args[-1], [])
        if args[-1] == "models":
            expected = ["lenet", "tinynet", "clashnet", "dupenet", "badmetanet", "wrongnet"]
        if args[-1] == "--json":
            names = {entry["name"] for entry in json.loads(listed)}
            missing = {"lenet", "tinynet", "dupenet", "badmetanet", "badmetaset", "badmetaaug"} - names
        else:
            missing = {name for name in expected if name not in listed}
        if missing:
            problems.append(f"missing from the listing: {sorted(missing)}")
        if "goodname" in listed or "halfnet" in listed:
            problems.append("a failed hook's entries were not rolled back")
        ledger.record(AREA, "zoo list with broken plugins", " ".join(args), not problems, "; ".join(problems))
        failures += problems
    assert not failures, failures


def test_a_built_in_name_stays_built_in(broken_world, ledger) -> None:
    entries = {
        kind: broken_world.registry(kind).get(name)
        for kind, name in (("model", "lenet"), ("dataset", "digits"), ("augmentation", "cutmix"))
    }
    held = all(e.plugin.startswith("builtin.") for e in entries.values())
    ledger.record(
        AREA,
        "duplicate names",
        "lenet, digits, cutmix still the built-ins",
        held,
        {k: e.plugin for k, e in entries.items()},
    )
    assert held


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["info", "badmetanet"], ("badmetanet", "input_size")),
        (["info", "badmetaset"], ("badmetaset", "zoo_badmeta")),
        (["info", "badmetaaug"], ("badmetaaug", "zoo_badmeta")),
        (["train", "digits", "wrongnet", "--epochs", "1"], ("wrongnet", "Module")),
        (["train", "digits", "dictnet", "--epochs", "1"], ("dictnet", "Module")),
        (["train", "wrongset", "lenet", "--epochs", "1"], ("wrongset", "classes")),
        (["train", "digits", "halfnet"], ("halfnet", "raiser")),
        (["train", "digits", "goodname"], ("goodname",)),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_using_a_broken_entry_is_one_error_line(
    args: list[str], names, tmp_path: Path, broken_world, ledger
) -> None:
    if args[0] == "train":
        args = [*args, "--out", str(tmp_path / "run"), "--no-tensorboard"]
    outcome = invoke(args, timeout=300)
    problems = outcome.problems(codes=(1, 2), names=names[:1])
    if not all(n in outcome.err for n in names):
        problems.append(f"the error does not name {names}")
    ledger.record(AREA, "using a broken entry", " ".join(args[:4]), not problems, outcome.summary())
    assert not problems, problems


@pytest.mark.parametrize("model", ["lenet", "dupenet", "badmetanet"])
def test_other_entries_still_train(model: str, tmp_path: Path, broken_world, ledger) -> None:
    outcome = invoke(
        [
            "train",
            "digits",
            model,
            "--epochs",
            "1",
            "--batch-size",
            "256",
            "--out",
            tmp_path / "run",
            "--no-tensorboard",
        ],
        timeout=300,
    )
    problems = outcome.problems(codes=(0,))
    if not (tmp_path / "run" / "model.safetensors").is_file():
        problems.append("no weights written")
    ledger.record(
        AREA,
        "zoo train of other entries",
        f"zoo train digits {model} --epochs 1",
        not problems,
        outcome.summary(),
    )
    assert not problems, problems


def test_the_real_entry_point_lists_with_broken_plugins(plugin_site: Path, more_site: Path, ledger) -> None:
    import os

    path = os.pathsep.join([str(more_site), str(plugin_site), os.environ.get("PYTHONPATH", "")]).rstrip(
        os.pathsep
    )
    outcome = run_entry_point(["list"], env={"PYTHONPATH": path})
    problems = outcome.problems(codes=(0,))
    if "tinynet" not in outcome.out or "lenet" not in outcome.out:
        problems.append("entries missing")
    if len(outcome.err.strip().splitlines()) != 1:
        problems.append(f"stderr: {outcome.err!r}")
    ledger.record(
        AREA,
        "zoo list with broken plugins",
        "python -m zoo_core list (fresh process)",
        not problems,
        outcome.err.strip()[:200],
    )
    assert not problems, problems
