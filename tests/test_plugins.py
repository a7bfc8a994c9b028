"""Plugin discovery through real entry points: third-party packages installed with pip, failure isolation,
the environment switches, and the torch-free promise of `zoo list` / `zoo --help`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOOD = {"ZOO_DISABLE_PLUGINS": "brokenimport,raiser,clash"}


def test_third_party_plugin_appears_in_zoo_list_and_its_model_builds(plugin_site, run_zoo):
    result = run_zoo("list", "models", "--json", site=plugin_site, env=GOOD)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["tinynet"]["plugin"] == "tiny"
    assert rows["tinynet"]["summary"] == "A tiny MLP from a third party"
    table = run_zoo("list", "models", "tiny*", site=plugin_site, env=GOOD)
    assert "tinynet" in table.stdout and "tiny" in table.stdout
    build = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.path.insert(0, sys.argv[1]); import torch, zoo_core;"
            "m = zoo_core.create_model('tinynet', num_classes=3, in_chans=1);"
            "print(tuple(m(torch.zeros(2, 1, 8, 8)).shape))",
            str(plugin_site),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": "", "ZOO_DISABLE_PLUGINS": "clash"},
    )
    assert build.stdout.strip() == "(2, 3)", build.stderr


def test_plugin_command_is_added_to_the_cli(plugin_site, run_zoo):
    assert "tiny-hello" in run_zoo("--help", site=plugin_site, env=GOOD).stdout
    result = run_zoo("tiny-hello", site=plugin_site, env=GOOD)
    assert result.returncode == 0 and result.stdout.strip() == "hello from tiny"


def test_broken_plugins_do_not_break_zoo_list(plugin_site, run_zoo):
    result = run_zoo("list", "models", "--json", site=plugin_site)
    assert result.returncode == 0, result.stderr
    names = {row["name"]: row for row in json.loads(result.stdout)}
    assert names["tinynet"]["plugin"] == "tiny"  # not replaced by the clashing plugin
    assert names["clashnet"]["plugin"] == "clash"  # the clashing plugin's other names still load
    assert "halfnet" not in names  # the raising hook's partial entries are rolled back
    warning = [line for line in result.stderr.splitlines() if line]
    assert len(warning) == 1
    assert warning[0].startswith("zoo: warning: 3 plugin(s) had errors")
    assert all(name in warning[0] for name in ("brokenimport", "clash", "raiser"))


def test_zoo_plugins_shows_each_error(plugin_site, run_zoo):
    result = run_zoo("plugins", "--json", site=plugin_site)
    assert result.returncode == 0, result.stderr
    report = {p["name"]: p for p in json.loads(result.stdout)}
    assert report["tiny"]["status"] == "ok"
    assert report["tiny"]["distribution"] == "zoo-tiny" and report["tiny"]["version"] == "1.2.3"
    assert report["tiny"]["hooks"] == ["register_commands", "register_models"]
    assert report["brokenimport"]["errors"] == [
        {"stage": "import", "message": "ImportError: zoo_brokenimport needs a library that is not installed"}
    ]
    assert report["raiser"]["errors"][0]["stage"] == "register_models"
    assert "raiser's hook exploded" in report["raiser"]["errors"][0]["message"]
    [clash] = report["clash"]["errors"]
    assert clash["stage"] == "duplicate"
    assert "'tinynet'" in clash["message"] and "'clash'" in clash["message"] and "'tiny'" in clash["message"]
    text = run_zoo("plugins", site=plugin_site)
    assert "brokenimport: import: ImportError" in text.stdout
    assert "builtin.models" in text.stdout


@pytest.mark.parametrize(
    ("disabled", "message"),
    [
        ("raiser,clash", "zoo_brokenimport needs a library"),
        ("brokenimport,clash", "raiser's hook exploded"),
        ("brokenimport,raiser", "already registered by plugin 'tiny'"),
    ],
)
def test_strict_mode_propagates_each_failure(plugin_site, run_zoo, disabled, message):
    result = run_zoo(
        "list", site=plugin_site, env={"ZOO_STRICT_PLUGINS": "1", "ZOO_DISABLE_PLUGINS": disabled}
    )
    assert result.returncode == 1
    assert message in result.stderr


def test_load_plugins_selects_entry_points(plugin_site, run_zoo):
    only = run_zoo("plugins", "--json", site=plugin_site, env={"ZOO_LOAD_PLUGINS": "tiny"})
    assert [p["name"] for p in json.loads(only.stdout)] == ["tiny"]
    none = run_zoo("plugins", "--json", site=plugin_site, env={"ZOO_LOAD_PLUGINS": ""})
    assert json.loads(none.stdout) == []
    listing = run_zoo("list", "--json", site=plugin_site, env={"ZOO_LOAD_PLUGINS": ""})
    assert listing.returncode == 0 and json.loads(listing.stdout) == []


def test_unknown_name_with_failed_plugin_says_so(plugin_site, run_zoo):
    result = run_zoo("info", "halfnet", site=plugin_site)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [("list",), ("--help",), ("plugins",), ("list", "models", "--json")])
def test_listing_and_help_never_import_torch(args):
    code = (
        "import sys\n"
        "from zoo_core.cli import cli\n"
        f"code = cli.main({list(args)!r}, standalone_mode=False)\n"
        "heavy = sorted(m for m in ('torch', 'torchvision', 'timm', 'numpy') if m in sys.modules)\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert "HEAVY []" in result.stderr, result.stderr


def test_zoo_core_never_imports_zoo_plugins():
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "zoo_core").rglob("*.py")
        if "zoo_plugins" in path.read_text()
    ]
    assert offenders == []


def test_zoo_check_passes_a_conforming_plugin(plugin_site, run_zoo):
    result = run_zoo("check", "tiny", site=plugin_site, env=GOOD, timeout=600)  # eight checks, each runs code
    assert result.returncode == 0, result.stdout + result.stderr
    [declared] = [line for line in result.stdout.splitlines() if "declared metadata" in line]
    assert declared.split()[:3] == ["PASS", "model", "tinynet"]
    assert declared.endswith("195 params, input 1×8×8, 3 classes")
    assert result.stdout.splitlines()[-1] == "8 passed, 0 failed"


def test_zoo_check_fails_a_broken_plugin_and_names_the_stage(plugin_site, run_zoo):
    result = run_zoo("check", "raiser", site=plugin_site)
    assert result.returncode == 1
    [row] = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert row.split()[:4] == ["FAIL", "plugin", "raiser", "register_models"]
    assert row.endswith("RuntimeError: raiser's hook exploded")
    unknown = run_zoo("check", "nope", site=plugin_site)
    assert unknown.returncode == 2 and "No plugin 'nope' is installed" in unknown.stderr
