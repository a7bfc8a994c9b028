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
