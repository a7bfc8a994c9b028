"""The plugin author's kit is one package, zoo_core.kit; the names plugins and docs imported before it became
one (zoo_core.contracts, .conformance, .testing, .scaffold) are the same modules, and none imports torch
until it is used."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KIT = ("contracts", "conformance", "testing", "scaffold")


@pytest.mark.parametrize("name", KIT)
def test_the_old_module_name_is_the_kit_module_itself(name):
    old = importlib.import_module(f"zoo_core.{name}")
    assert old is importlib.import_module(f"zoo_core.kit.{name}")
    exec(f"from zoo_core import {name} as via_package", namespace := {})
    assert namespace["via_package"] is old


def test_patching_the_old_name_patches_what_the_kit_uses(monkeypatch):
    import zoo_core.contracts
    from zoo_core.kit import contracts

    monkeypatch.setattr(zoo_core.contracts, "DEFAULT_NUM_CLASSES", 7)
    assert contracts.model_num_classes({}) == 7


def test_the_kit_and_its_old_names_import_without_torch():
    code = (
        "import sys, zoo_core.kit, zoo_core.contracts, zoo_core.kit.scaffold\n"
        "from zoo_core.cli import cli\n"
        "cli.main(['list', 'optimizers'], standalone_mode=False)\n"
        "print('HEAVY', sorted(m for m in ('torch', 'torchvision') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr
    assert "muon" in result.stdout
