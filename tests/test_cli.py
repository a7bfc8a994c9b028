"""The command line as a user meets it: help, version, listing, info and one-line errors."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from zoo_core import __version__
from zoo_core.cli import cli


@pytest.fixture
def invoke(catalog):
    runner = CliRunner()
    return lambda *args: runner.invoke(cli, list(args))


def test_version(invoke):
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.strip() == f"zoo {__version__}"


def test_help_lists_every_command(invoke):
    result = invoke("--help")
    for command in ("list", "plugins", "info", "train", "eval", "predict", "bench", "export", "check"):
        assert f"  {command} " in result.output


def test_list_shows_all_kinds_with_builtins(invoke):
    result = invoke("list")
    assert result.exit_code == 0
    assert (
        "models (" in result.output and "datasets (" in result.output and "augmentations (" in result.output
    )


def test_list_unknown_kind_is_a_pattern_matching_nothing(invoke):
    result = invoke("list", "no-such-thing*", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_unknown_info_name_exits_2_with_one_line_suggestion(invoke):
    result = invoke("info", "resnt18")
    assert result.exit_code == 2
    assert result.output == "Error: Unknown name 'resnt18'. Did you mean 'resnet18'? (see: zoo list)\n"


def test_unknown_command_is_one_line(invoke):
    result = invoke("trian")
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("Error: No such command 'trian'")


def test_info_of_a_namespace_name_suggests_from_the_namespace(invoke):
    result = invoke("info", "timm/resnt10t")
    assert result.exit_code == 2
    assert "Did you mean 'timm/resnet10t'?" in result.output


def test_info_shows_where_the_builder_lives(invoke):
    result = invoke("info", "timm/resnet10t", "--json")
    assert json.loads(result.output)["builder"] == "zoo_plugins.models.timm_bridge:create('resnet10t')"
    assert json.loads(invoke("info", "lenet", "--json").output)["builder"] == "zoo_plugins.models.lenet:lenet"


def test_list_suggests_a_kind_for_a_typo(invoke):
    result = invoke("list", "modles")
    assert result.exit_code == 0
    assert (
        "No models or datasets or augmentations or optimizers match 'modles'. Did you mean 'models'?"
        in result.output
    )


def test_registry_names_complete_in_the_shell(run_zoo):
    def complete(line: str) -> list[str]:
        words = line.split(" ")
        env = {"_ZOO_COMPLETE": "bash_complete", "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}
        result = run_zoo(env=env)
        assert result.returncode == 0, result.stderr
        return [item.split(",", 1)[1] for item in result.stdout.split()]

    assert complete("zoo train ci") == ["cifar10"]
    assert complete("zoo train cifar10 resnet") == ["resnet18", "resnet34", "resnet50"]
