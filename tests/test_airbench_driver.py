"""benchmarks/airbench_cpu.py --dry-run: airbench94's own code and zoo's fastnet, a few steps each on a tiny
set, so the side-by-side driver cannot rot between its long runs."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("airbench") is None, reason="airbench is not installed")
def test_the_airbench_driver_runs_both_recipes_on_a_tiny_set(tmp_path):
    env = {**os.environ, "TQDM_DISABLE": "1"}
    command = [sys.executable, "benchmarks/airbench_cpu.py", "--dry-run", "--work", str(tmp_path)]
    command += ["--runners", "zoo", "airbench"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads((tmp_path / "dry-run" / "report.json").read_text())
    rows = {row["runner"]: row for row in doc["rows"]}
    assert set(rows) == {"airbench", "zoo"}
    for row in rows.values():
        assert 0 <= row["acc"] <= 1 and 0 <= row["tta_acc"] <= 1
        assert row["wall_s"] > 0 and row["img_per_s"] > 0
    assert rows["airbench"]["epochs"] == 1 and rows["zoo"]["epochs"] == 1
    assert doc["airbench_version"] == "0.1.8"
    report = (tmp_path / "dry-run" / "report.md").read_text()
    assert "| a tiny synthetic set (dry run) | airbench | 0 |" in report
    assert "Means:" in report
    # a second call picks up the finished runs instead of training again
    again = subprocess.run(
        [*command, "--cached-only"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((tmp_path / "dry-run" / "report.json").read_text())["rows"] == doc["rows"]


# airbench94_muon.py is not part of zoo (nor copied into it): the test runs it where a clone of its repository
# is at hand, as `benchmarks/airbench_cpu.py --airbench-muon PATH` does
MUON_SCRIPT = Path(os.environ.get("AIRBENCH_MUON", "/tmp/cifar10-airbench/airbench94_muon.py"))


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("airbench") is None, reason="airbench is not installed")
@pytest.mark.skipif(not MUON_SCRIPT.is_file(), reason="no airbench94_muon.py (set AIRBENCH_MUON=PATH)")
def test_the_driver_runs_airbench94_muon_from_its_own_source_on_a_tiny_set(tmp_path):
    env = {**os.environ, "TQDM_DISABLE": "1"}
    command = [sys.executable, "benchmarks/airbench_cpu.py", "--dry-run", "--work", str(tmp_path)]
    command += ["--runners", "airbench_muon", "--airbench-muon", str(MUON_SCRIPT)]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads((tmp_path / "dry-run" / "report.json").read_text())
    (row,) = doc["rows"]
    assert row["runner"] == "airbench_muon" and row["epochs"] == 8
    assert 0 <= row["acc"] <= 1 and 0 <= row["tta_acc"] <= 1 and row["wall_s"] > 0
    assert row["load_before"] >= 0 and row["load_after"] >= 0
    assert doc["airbench_muon"]  # its commit in that clone, or the path
    assert "airbench94_muon.py" in (tmp_path / "dry-run" / "report.md").read_text()


def test_the_driver_refuses_airbench94_muon_without_its_source(tmp_path):
    command = [sys.executable, "benchmarks/airbench_cpu.py", "--dry-run", "--work", str(tmp_path)]
    result = subprocess.run(
        [*command, "--runners", "airbench_muon"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1 and "--airbench-muon PATH" in result.stderr
